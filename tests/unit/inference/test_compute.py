"""One thread per process runs torch's work (compute.py): every forward pass, the model loading and
warm-up, token embeddings; request threads hand their work over and do no torch work of their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from embedding_service.inference import compute
from embedding_service.inference.compute import ComputeThread

from support.paths import ROOT  # noqa: E402


def test_run_returns_the_result_from_one_thread_in_order():
    worker = ComputeThread("test-compute")
    seen = []

    def record(value):
        seen.append((value, threading.get_ident()))
        return value * 2

    callers = [threading.Thread(target=lambda v=v: worker.run(record, v)) for v in range(8)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    assert worker.run(record, 21) == 42
    assert sorted(value for value, _ in seen) == [*range(8), 21]
    assert {ident for _, ident in seen} == {worker.ident}
    assert worker.ident != threading.get_ident()


def test_run_re_raises_the_callers_exception_and_keeps_serving():
    worker = ComputeThread("test-compute")

    def fail():
        raise ValueError("bad batch")

    with pytest.raises(ValueError, match="bad batch"):
        worker.run(fail)
    assert worker.run(lambda: "still here") == "still here"


def test_a_call_from_the_compute_thread_runs_inline():
    worker = ComputeThread("test-compute")
    # Queued behind itself this would never finish: it must run directly.
    assert worker.run(lambda: worker.run(lambda: threading.get_ident())) == worker.ident


def test_every_forward_pass_runs_on_the_compute_thread(mm_app, mm_client):
    """Text batches of two models, token embeddings and images: all on the process's compute
    thread, whichever request thread asked."""
    from support.image_files import data_uri, encode, picture

    engines = mm_app.extensions["embedding_service"].engines
    threads: list[tuple[str, int]] = []
    patched = []
    for engine in engines.engines:
        model = engine.model
        inner = model.forward

        def forward(items, inner=inner, name=engine.name):
            threads.append((name, threading.get_ident()))
            return inner(items)

        model.forward = forward
        patched.append(model)
    try:
        requests = [
            ("/v1/embeddings", {"input": ["a cat", "a dog"]}),
            ("/v1/embeddings", {"input": "a bird", "model": engines.engines[1].name}),
            ("/embed", {"images": [data_uri(encode(picture(40, 30), "PNG"))]}),
            ("/embed_all", {"inputs": "token vectors"}),
        ]
        statuses = []
        callers = [
            threading.Thread(target=lambda r=r: statuses.append(mm_app.test_client().post(r[0], json=r[1]).status_code))
            for r in requests
        ]
        for thread in callers:
            thread.start()
        for thread in callers:
            thread.join()
    finally:
        for model in patched:
            del model.forward
    assert statuses == [200] * len(requests)
    assert len({name for name, _ in threads}) >= 2
    assert {ident for _, ident in threads} == {compute.compute.ident}


def test_image_items_hold_numpy_arrays(mm_app):
    """The image processor's output stays numpy until the forward pass: request threads never
    start torch's parallel regions (a 384 x 384 image is over torch's parallel grain)."""
    from PIL import Image

    from embedding_service.inference.engine import Capability

    engine = mm_app.extensions["embedding_service"].engines.default(Capability.EMBED_IMAGES)
    items = engine.model.prepare_images([Image.new("RGB", (64, 48), (10, 200, 30))])
    assert items and all(isinstance(value, np.ndarray) for value in items[0].tensors.values())


PROBE = r"""
import json, os, sys, threading, time
import numpy, scipy.linalg, torch  # their own native threads start at import: counted in `before`
torch.set_num_threads(2)

def native_threads():
    # Threads of this process that are not Python threads (a finished Python thread can linger
    # in /proc for a moment: the smallest of a few readings).
    counts = []
    for _ in range(5):
        tasks = {int(t) for t in os.listdir("/proc/self/task")}
        counts.append(len(tasks - {t.native_id for t in threading.enumerate()}))
        time.sleep(0.05)
    return min(counts)

before = native_threads()
from embedding_service.process.boot import local_app
from embedding_service.config.settings import Settings

app = local_app(Settings.from_mapping({"DEVICE": "cpu", "LOG_LEVEL": "WARNING", "DTYPE": "float32",
                                        "CPU_KERNELS": "mkl", "METRICS": "false"}))
texts = [" ".join(["word%d" % i] * 60) for i in range(16)]

def ask(path, body):
    assert app.test_client().post(path, json=body).status_code == 200

for round_ in range(3):
    callers = [threading.Thread(target=ask, args=("/v1/embeddings", {"input": texts})),
               threading.Thread(target=ask, args=("/embed_all", {"inputs": texts[:2]}))]
    for c in callers: c.start()
    for c in callers: c.join()
print(json.dumps({"before": before, "after": native_threads(), "torch_threads": torch.get_num_threads()}))
"""


@pytest.mark.slow
def test_one_openmp_team_per_process():
    """libgomp gives every thread that starts a parallel region a team of its own, and once a
    process holds more OpenMP threads than CPUs every team sleeps between regions (a forward pass
    about 2x slower on 2 cores). Loading the real MiniLM and serving batches from six request
    threads must leave exactly one team: torch_threads - 1 native threads more than before."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "2", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["torch_threads"] == 2
    assert report["after"] - report["before"] == report["torch_threads"] - 1, report
