"""The development server (`python -m embedding_service`) stops on SIGTERM: exit status 0 within
seconds, in-flight requests finished first, new connections refused.

In a container this process is PID 1, and the kernel drops every signal whose disposition is the
default for PID 1: what makes `docker stop` work there is the explicit SIGTERM handler that
`__main__` installs, which these tests exercise (PID 1 itself cannot be reproduced without a
container).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from conftest import free_port

from support.paths import ROOT  # noqa: E402
pytestmark = pytest.mark.slow


def start(tmp_path, **env) -> tuple[str, subprocess.Popen]:
    """The development server on the embedded default, on a free loopback port, once ready."""
    port = free_port()
    full = dict(os.environ, PORT=str(port), HOST="127.0.0.1", DEVICE="cpu", LOG_LEVEL="WARNING", HF_HUB_OFFLINE="1", **env)
    for name in ("MODEL_NAME", "EMBEDDING_MODEL", "RERANK_MODEL", "MODELS", "MODEL_DIR"):
        full.pop(name, None)
    log = open(tmp_path / "server.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "embedding_service"], cwd=ROOT, env=full, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, "the server exited before it was ready"
        try:
            if requests.get(f"{url}/ready", timeout=2).status_code == 200:
                return url, proc
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "the server did not become ready"
        time.sleep(0.2)


def refuses_connections(url: str) -> bool:
    host, port = url.rsplit("/", 1)[1].split(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) != 0


def stop_for_good(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def test_sigterm_stops_the_idle_server_with_status_0(tmp_path):
    url, proc = start(tmp_path)
    try:
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        # The serving loop stops within 0.5 s; the rest is the interpreter's and torch's own
        # teardown (1 to 5 s on 2 busy cores), well inside `docker stop`'s timeout.
        assert proc.wait(timeout=15) == 0
        print(f"\nexited {time.monotonic() - began:.2f}s after SIGTERM")
        assert refuses_connections(url)
    finally:
        stop_for_good(proc)


def test_sigterm_lets_the_request_in_flight_finish_and_refuses_new_ones(tmp_path):
    url, proc = start(tmp_path)
    inputs = ["a fairly long sentence about cats, dogs and the weather in spring " * 4] * 512
    outcome: dict = {}

    def send() -> None:
        resp = requests.post(f"{url}/v1/embeddings", json={"input": inputs}, timeout=300)
        outcome["status"], outcome["rows"] = resp.status_code, len(resp.json().get("data", []))

    client = threading.Thread(target=send)
    try:
        client.start()
        time.sleep(0.5)
        assert client.is_alive(), "the request finished before SIGTERM: make it larger"
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 2  # the serving loop notices the shutdown within 0.5 s
        while not refuses_connections(url):
            assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
            time.sleep(0.05)
        client.join(timeout=300)
        assert outcome == {"status": 200, "rows": len(inputs)}
        assert proc.wait(timeout=15) == 0
    finally:
        stop_for_good(proc)
        client.join(timeout=300)
