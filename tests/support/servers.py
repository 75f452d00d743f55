"""Real Gunicorn servers for the tests: started on a free loopback port from the repository's
gunicorn.conf.py, waited for, and stopped by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests

from conftest import free_port
from support.paths import ROOT


def start_gunicorn(tmp_path, **env) -> tuple[str, subprocess.Popen]:
    port = free_port()
    full = dict(os.environ, PORT=str(port), HOST="127.0.0.1", DEVICE="cpu", LOG_LEVEL="WARNING",
                PROMETHEUS_MULTIPROC_DIR=str(tmp_path / f"metrics-{port}"))
    full.pop("MODELS", None)  # the caller's environment, not the caller's arguments
    full.update(env)
    log = open(tmp_path / f"gunicorn-{port}.log", "w")
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    proc = subprocess.Popen([gunicorn, "-c", "gunicorn.conf.py", "embedding_service.wsgi:app"], cwd=ROOT, env=full,
                            stdout=log, stderr=log)
    return f"http://127.0.0.1:{port}", proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_healthy(url: str, proc: subprocess.Popen, seconds: float = 90, workers: int = 1) -> None:
    """Wait until `workers` distinct worker processes have answered /ready with 200."""
    deadline = time.time() + seconds
    ready: set = set()
    while time.time() < deadline:
        assert proc.poll() is None, "gunicorn exited early"
        try:
            resp = requests.get(f"{url}/ready", timeout=2, headers={"Connection": "close"})
            if resp.status_code == 200:
                ready.add(resp.json()["pid"])
                if len(ready) >= workers:
                    return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"gunicorn did not become ready ({len(ready)} of {workers} workers)")


def post_status(url: str, body: dict, path: str = "/v1/embeddings") -> object:
    """The status of one request on a fresh connection, or the exception's name."""
    try:
        return requests.post(f"{url}{path}", json=body, headers={"Connection": "close"}, timeout=60).status_code
    except requests.RequestException as exc:
        return type(exc).__name__


def start_redis(folder: str) -> tuple[int, subprocess.Popen]:
    """A real redis-server on a free loopback port, answering pings: (port, process). Skips the
    test without Debian's redis-server, or fails it with REQUIRE_REDIS=1 (as `.ci/run` sets)."""
    import shutil

    import pytest

    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("REQUIRE_REDIS"):
            pytest.fail("redis-server is not installed (CI installs it in .ci/run)")
        pytest.skip("redis-server is not installed; `apt-get install redis-server` to run this test")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return port, proc
