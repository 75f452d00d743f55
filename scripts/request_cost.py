"""CPU time the server spends on one single-text request outside the forward pass
(CONCURRENCY_ANALYSIS.md, "Where a request's CPU goes").

    .venv/bin/python scripts/request_cost.py                 # the per-piece table, in-process
    .venv/bin/python scripts/request_cost.py --profile 20    # and cProfile's top 20 functions
    .venv/bin/python scripts/request_cost.py --whole ../before   # the whole request only, of another checkout
    .venv/bin/python scripts/request_cost.py --bare          # the floor: a bare Flask app (request_cost_bare.py)

The app is built as a Gunicorn worker builds it (metrics in multiprocess mode, the access log
written, here to /dev/null), serving the real MiniLM, with the model's forward pass replaced by a
stub that returns zeros: what is left is the request path. Each request is one WSGI call on this
thread with the body of `benchmark.py --endpoint openai-root` (one text of 24 words). Each piece
is timed where it runs, inside the requests (`time.thread_time` around the function that does
it, a microsecond or so of timing per piece included); "Flask and Werkzeug" is the rest of the
request thread's time, "compute thread" the rest of the process's (`time.process_time`). Best of
RUNS runs; Gunicorn's own HTTP parsing and socket work are not in these figures.

    .venv/bin/python scripts/request_cost.py --gunicorn --concurrency 32 --seconds 10

measures a real Gunicorn instead (`scripts/request_cost_gunicorn.conf.py`: `make run`'s
configuration with the forward passes stubbed), loaded by `benchmark.run_load` from this process:
its workers' CPU time (all threads, from /proc) per request served, by thread. With --bare, the
same Gunicorn settings (workers, threads, worker class, timeouts) serve `request_cost_bare.py`,
none of the service's hooks: what Gunicorn and Flask alone cost per request.
"""

from __future__ import annotations

import argparse
import collections
import functools
import io
import logging
import os
import sys
import tempfile
import time
from typing import Any, Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="request-cost-metrics-"))
RUNS = 5

#: CPU seconds of this thread spent in each timed piece.
SPENT: collections.Counter = collections.Counter()


def timed(owner: Any, name: str, label: str) -> None:
    """Replace `owner.name` by a wrapper adding its thread CPU time to SPENT[label]."""
    inner = getattr(owner, name)

    @functools.wraps(inner)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return inner(*args, **kwargs)
        finally:
            SPENT[label] += time.thread_time() - started

    setattr(owner, name, wrapper)


#: The pieces, in the order a request meets them: (label, where it is timed).
PIECES = (
    ("before-request hooks (request id, stats, API keys, body limit)", "preprocess_request"),
    ("JSON body (read + orjson)", "json_body"),
    ("request schema (pydantic)", "parse"),
    ("prompt + tokenise", "prepare_texts"),
    ("batcher hand-off, request thread side", "run"),
    ("normalise (numpy)", "postprocess"),
    ("response body (orjson + Response)", "json_response"),
    ("access log line", "log_access"),
    ("request metrics", "observe_request"),
)


def build():
    """The app with every piece timed and the forward stubbed: (app, WSGI caller)."""
    import flask
    import numpy as np
    import orjson

    from benchmark import make_texts
    from embedding_service.http import app as http_app
    from embedding_service.http.dialects.openai import routes as openai
    from embedding_service.process.boot import local_app
    from embedding_service.observability import metrics
    from embedding_service.operations import embed as service
    from embedding_service.config.settings import Settings

    label = dict((where, text) for text, where in PIECES)
    timed(metrics, "observe_request", label["observe_request"])  # before the app captures it
    settings = Settings.from_mapping({"DEVICE": "cpu", "LOG_LEVEL": "WARNING", "DTYPE": "float32", "CPU_KERNELS": "mkl"})
    app = local_app(settings)
    for handler in logging.getLogger("embedding_service").handlers:  # the access log is written, to nowhere
        handler.setStream(open(os.devnull, "w"))
    engine = app.extensions["embedding_service"].engines.first
    dimension = engine.model.dimension
    engine.model.forward = lambda items: np.zeros((len(items), dimension), dtype=np.float32)
    timed(flask.Flask, "preprocess_request", label["preprocess_request"])
    for name in ("json_body", "parse", "json_response"):
        timed(openai, name, label[name])
    timed(engine.model, "prepare_texts", label["prepare_texts"])
    timed(engine.batcher, "run", label["run"])
    timed(service, "postprocess", label["postprocess"])
    timed(http_app, "log_access", label["log_access"])
    return app, wsgi_call(app, orjson.dumps({"input": make_texts(1)[0]}))


def wsgi_call(app, body: bytes, path: str = "/embeddings") -> Callable[[], bytes]:
    from werkzeug.test import EnvironBuilder

    base = EnvironBuilder(path=path, method="POST", data=body, content_type="application/json").get_environ()
    base["REMOTE_ADDR"] = "127.0.0.1"

    def call() -> bytes:
        environ = dict(base)
        environ["wsgi.input"] = io.BytesIO(body)
        status = []
        chunks = app(environ, lambda s, h, e=None: status.append(s))
        out = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        assert status[0].startswith("200"), (status, out[:200])
        return out

    return call


def in_process(call: Callable[[], bytes], count: int) -> dict[str, float]:
    """µs per request of each piece, Flask and Werkzeug (the rest of this thread), the compute
    thread (the rest of the process) and the whole; the run with the smallest whole of RUNS."""
    best: dict[str, float] = {}
    for _ in range(RUNS):
        SPENT.clear()
        thread, process = time.thread_time(), time.process_time()
        for _ in range(count):
            call()
        thread, process = time.thread_time() - thread, time.process_time() - process
        row = {label: SPENT[label] / count * 1e6 for label, _ in PIECES}
        row["Flask and Werkzeug (the rest of the request thread)"] = (thread - sum(SPENT.values())) / count * 1e6
        row["compute thread (batcher's turn: queue, scatter, wake-up)"] = (process - thread) / count * 1e6
        row["whole request"] = process / count * 1e6
        if not best or row["whole request"] < best["whole request"]:
            best = row
    return best


def worker_cpu(master: int) -> dict[str, float]:
    """CPU seconds (user + system) of the child processes of `master`, by thread role: `poller`
    (each worker's main thread: Gunicorn's accept and keep-alive loop), `compute` (the compute
    thread, which runs the batchers' turns, named by scripts/request_cost_gunicorn.conf.py) and
    `requests` (every other thread: the request threads, which parse HTTP and run the app)."""
    import json

    ticks = os.sysconf("SC_CLK_TCK")
    out = {"poller": 0.0, "requests": 0.0, "compute": 0.0}
    with open(f"/proc/{master}/task/{master}/children") as handle:
        pids = [int(pid) for pid in handle.read().split()]
    for pid in pids:
        try:
            with open(os.path.join(tempfile.gettempdir(), f"request-cost-{pid}.json")) as handle:
                compute_threads = set(json.load(handle)["compute"])
        except OSError:
            compute_threads = set()
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            role = "poller" if int(tid) == pid else "compute" if int(tid) in compute_threads else "requests"
            out[role] += (int(fields[11]) + int(fields[12])) / ticks
    return out


def gunicorn_cost(concurrency: int, seconds: float, endpoint: str, bare: bool = False) -> None:
    """Start Gunicorn with scripts/request_cost_gunicorn.conf.py (forward passes stubbed) on a
    free port, load it with `benchmark.run_load` (1 text per request) and print its workers' CPU
    per request, and the load generator's own. With `bare`: Gunicorn with the same workers,
    threads and timeouts serving scripts/request_cost_bare.py instead."""
    import asyncio
    import signal
    import socket
    import subprocess
    import urllib.request

    from benchmark import make_texts, run_load

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, PORT=str(port), HOST="127.0.0.1", LOG_LEVEL="WARNING", DEVICE="cpu")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    if bare:
        command, cwd = [gunicorn, *make_run_layout(), "-b", f"127.0.0.1:{port}", "request_cost_bare:app"], os.path.join(ROOT, "scripts")
    else:
        conf = os.path.join(ROOT, "scripts", "request_cost_gunicorn.conf.py")
        command, cwd = [gunicorn, "-c", conf, "embedding_service.wsgi:app"], ROOT
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                log.seek(0)
                raise SystemExit(f"gunicorn exited:\n{log.read().decode(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        texts = make_texts(1024)
        asyncio.run(run_load("warm", url, endpoint, concurrency, 1, 0, 3.0, 200, None, texts))
        before, own = worker_cpu(proc.pid), time.process_time()
        result = asyncio.run(run_load("gunicorn", url, endpoint, concurrency, 1, 0, seconds, 0, None, texts))
        after, own = worker_cpu(proc.pid), time.process_time() - own
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    served = result.ok
    spent = {role: (after[role] - before[role]) / served * 1e6 for role in after}
    print(f"Gunicorn ({'bare Flask app' if bare else 'forward stubbed'}), concurrency {concurrency}, {served} requests in {result.seconds:.1f} s "
          f"({result.requests_per_s:.0f}/s), errors {result.errors or 0}; CPU µs per request:")
    print(f"  workers {sum(spent.values()):.0f} = request threads {spent['requests']:.0f} + Gunicorn's accept/keep-alive "
          f"loop {spent['poller']:.0f} + compute threads {spent['compute']:.0f}; load generator {own / served * 1e6:.0f}")


def make_run_layout() -> list[str]:
    """Gunicorn's command-line options for `make run`'s worker class, workers, threads and
    timeouts, as gunicorn.conf.py derives them from the environment (no hooks, no logging)."""
    from embedding_service.config.devices import device_list, worker_count
    from embedding_service.config.settings import Settings

    settings = Settings.from_env()
    workers = worker_count(settings, device_list(settings))
    return ["-k", "gthread", "-w", str(workers), "--threads", str(settings.threads), "-t", str(settings.timeout),
            "--graceful-timeout", str(settings.graceful_timeout), "--log-level", "warning"]


def per_request(call: Callable[[], bytes], count: int) -> float:
    """CPU µs of the whole process per `call()`: the best of RUNS runs of `count`, after 200 to warm up."""
    for _ in range(200):
        call()
    best = float("inf")
    for _ in range(RUNS):
        began = time.process_time()
        for _ in range(count):
            call()
        best = min(best, (time.process_time() - began) / count * 1e6)
    return best


def bare_cost(count: int) -> float:
    """CPU µs per request of scripts/request_cost_bare.py's app (the whole process, best of RUNS
    runs of `count`), called as `whole_cost` calls the service: the floor under it."""
    import orjson

    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from request_cost_bare import app

    from benchmark import make_texts

    return per_request(wsgi_call(app, orjson.dumps({"input": make_texts(1)[0]})), count)


def whole_cost(tree: str, count: int) -> float:
    """CPU µs per single-text request (the whole process, best of RUNS runs of `count`), forward
    stubbed, of the service in the checkout `tree`: only what every version of the app has is
    touched (create_app, the first engine, its model's forward), so an older commit's checkout
    (`git worktree add`) can be measured against this one, interleaved."""
    sys.path.insert(0, os.path.abspath(tree))
    import numpy as np
    import orjson

    from benchmark import make_texts
    import embedding_service

    assert os.path.dirname(os.path.abspath(embedding_service.__file__)).startswith(os.path.abspath(tree))
    env = {"DEVICE": "cpu", "LOG_LEVEL": "WARNING", "DTYPE": "float32"}
    try:  # the layered tree: process/boot.local_app
        from embedding_service.config.settings import Settings
        from embedding_service.process.boot import local_app

        app = local_app(Settings.from_mapping(env))
    except ImportError:  # a checkout from before the layers: embedding_service.app.create_app(settings)
        from embedding_service.app import create_app
        from embedding_service.settings import Settings

        app = create_app(Settings.from_mapping(env))
    for handler in logging.getLogger("embedding_service").handlers:
        handler.setStream(open(os.devnull, "w"))
    holder = app.extensions["embedding_service"]
    model = (getattr(holder, "engines", None) or holder).first.model
    model.forward = lambda items, dimension=model.dimension: np.zeros((len(items), dimension), dtype=np.float32)
    return per_request(wsgi_call(app, orjson.dumps({"input": make_texts(1)[0]})), count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests per timed run")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="also print cProfile's top N functions")
    parser.add_argument("--gunicorn", action="store_true", help="measure a real Gunicorn under load instead")
    parser.add_argument("--concurrency", type=int, default=32, help="with --gunicorn: concurrent requests")
    parser.add_argument("--seconds", type=float, default=10.0, help="with --gunicorn: seconds of load")
    parser.add_argument("--endpoint", default="openai-root", help="with --gunicorn: benchmark.py's endpoint")
    parser.add_argument("--whole", metavar="CHECKOUT", help="only the whole request's CPU, of the code in CHECKOUT")
    parser.add_argument("--bare", action="store_true", help="a bare Flask app instead (request_cost_bare.py): the floor")
    args = parser.parse_args()
    if args.gunicorn:
        gunicorn_cost(args.concurrency, args.seconds, args.endpoint, bare=args.bare)
        return
    if args.bare:
        print(f"bare Flask app: {bare_cost(args.requests):.1f} µs of CPU per request (whole process)")
        return
    if args.whole:
        print(f"{args.whole}: {whole_cost(args.whole, args.requests):.1f} µs of CPU per request (whole process)")
        return
    app, call = build()
    for _ in range(200):
        call()
    row = in_process(call, args.requests)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"CPU: {cpu}, {os.cpu_count()} cores; {args.requests} requests per run, best of {RUNS}; CPU µs per request")
    print("| piece | µs | share |")
    print("|---|---:|---:|")
    whole = row.pop("whole request")
    for name, micros in row.items():
        print(f"| {name} | {micros:.1f} | {micros / whole:.0%} |")
    print(f"| **whole request, one WSGI call** | **{whole:.1f}** | 100% |")
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.requests):
            call()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)


if __name__ == "__main__":
    main()
