"""Soak (a criterion of CONCURRENCY_ANALYSIS.md §4): 10,000 requests at concurrency 64 through
real Gunicorn: no errors, and each worker's memory after the run within 10% of after the first
1,000."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

import benchmark
from conftest import free_port
from support.paths import ROOT
from support.servers import wait_healthy

pytestmark = pytest.mark.slow


def worker_pids(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:"))


def test_ten_thousand_requests_no_errors_and_flat_memory(tmp_path):
    port = free_port()
    env = dict(os.environ, PORT=str(port), HOST="127.0.0.1", DEVICE="cpu", LOG_LEVEL="WARNING")
    env.pop("MODELS", None)
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    with open(tmp_path / "gunicorn.log", "w") as log:
        proc = subprocess.Popen(
            [gunicorn, "-c", "gunicorn.conf.py", "--access-logfile", "/dev/null", "embedding_service.wsgi:app"],
            cwd=ROOT, env=env, stdout=log, stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, workers=2)
        texts = benchmark.make_texts(1024)

        def load(count: int) -> benchmark.Result:
            return asyncio.run(benchmark.run_load("soak", url, "openai", 64, 1, count, 0, 0, None, texts))

        first = load(1000)
        workers = worker_pids(proc.pid)
        assert len(workers) >= 2
        time.sleep(6)  # one malloc_trim period: compare settled memory, not in-flight buffers
        after_first = {pid: rss_kib(pid) for pid in workers}
        rest = load(9000)
        time.sleep(6)
        after_all = {pid: rss_kib(pid) for pid in workers}
        assert first.errors == {} and rest.errors == {}
        assert first.ok + rest.ok == 10_000
        for pid in workers:
            assert after_all[pid] <= after_first[pid] * 1.10, (pid, after_first[pid], after_all[pid])
        assert worker_pids(proc.pid) == workers  # nobody crashed and was replaced
        print(f"soak: {rest.requests_per_s:.1f} req/s; RSS KiB after 1,000 {after_first} after 10,000 {after_all}")
        assert requests.get(f"{url}/health", timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
