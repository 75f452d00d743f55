"""At the default budgets, the largest request each route's declaration admits (every route of
the URL map that takes items, walked as in test_route_budgets.py) is served by one real Gunicorn
worker with less than 1 GB of extra resident memory (its RSS high-water mark, VmHWM, against the
mark after one small request per route), while a neighbour's small request is answered within
2 s. Run on the real MiniLM (WordPiece; its window cut to 16 tokens so that 2,048 inputs fit a
test's time: the budgets, not the window, size the request) and on the tiny Qwen3 embedder
(byte-level BPE)."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from embedding_service.config.settings import Settings
from embedding_service.process.boot import local_app
from support.budget_walk import largest, path_of
from support.servers import start_gunicorn, stop, wait_healthy

pytestmark = pytest.mark.slow

GIB = 1024**3
NEIGHBOUR_SECONDS = 2.0


def vm_hwm(pid: int) -> int:
    """The process's resident-memory high-water mark, bytes."""
    with open(f"/proc/{pid}/status") as handle:
        line = next(line for line in handle if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


@pytest.mark.parametrize("family", ["minilm", "bpe"])
def test_the_largest_request_of_every_route_stays_under_1_gb_and_a_neighbour_is_answered(tmp_path, tiny, minilm_path, family):
    model = {"minilm": f"served={minilm_path};max_length=16", "bpe": f"served={tiny['qwen']}"}[family]
    env = {"MODELS": model, "WORKERS": "1", "THREADS": "8"}
    app = local_app(Settings.from_mapping({**env, "LOG_LEVEL": "WARNING", "DEVICE": "cpu"}))  # its routes and budgets
    state = app.extensions["embedding_service"]
    url, proc = start_gunicorn(tmp_path, **env)
    try:
        wait_healthy(url, proc)
        pid = requests.get(f"{url}/health", timeout=10).json()["pid"]
        session = requests.Session()
        routes = [(path_of(rule), app.view_functions[rule.endpoint].operation.budget)
                  for rule in app.url_map.iter_rules() if "POST" in rule.methods
                  and app.view_functions[rule.endpoint].operation.budget.item is not None]
        assert len(routes) >= 16
        for path, budget in routes:  # every route once, small: the baseline includes its code paths
            small = largest(budget, state.settings.model_copy(update={"max_client_batch_size": 2, "max_request_chars": 400}),
                            state.engines, "served")[0]
            assert session.post(url + path, json=small, timeout=60).status_code == 200, path
        baseline = vm_hwm(pid)
        report = []
        for path, budget in routes:
            body, count, size = largest(budget, state.settings, state.engines, "served")
            answer: dict = {}

            def big() -> None:
                started = time.perf_counter()
                resp = requests.post(url + path, json=body, timeout=300)
                answer.update(status=resp.status_code, seconds=time.perf_counter() - started, text=resp.text[:200])

            thread = threading.Thread(target=big)
            thread.start()
            time.sleep(0.5)
            started = time.perf_counter()
            neighbour = requests.post(url + "/v1/embeddings", json={"input": "a neighbour", "model": "served"}, timeout=60)
            waited = time.perf_counter() - started
            thread.join(timeout=300)
            grown = vm_hwm(pid) - baseline
            report.append((path, count, size, answer.get("seconds"), round(waited, 2), grown // 2**20))
            assert answer.get("status") == 200, (path, answer)
            assert neighbour.status_code == 200 and waited < NEIGHBOUR_SECONDS, (path, waited)
            assert grown < GIB, report
        print("\n".join(f"{path}: {count} x {size}, {seconds:.1f} s; neighbour {waited} s; VmHWM +{mib} MiB"
                        for path, count, size, seconds, waited, mib in report))
    finally:
        stop(proc)
