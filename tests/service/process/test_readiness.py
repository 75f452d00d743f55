"""A worker takes requests only once it can serve them (real Gunicorn, 2 CPU workers): requests
fired from the moment the server starts never see a 503 once one has succeeded, and killing one
worker under load gives no 503 while its replacement loads."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import requests

from support.servers import post_status, start_gunicorn, stop

pytestmark = pytest.mark.slow
BODY = {"input": "a short text"}


def post(url: str) -> object:
    return post_status(url, BODY)


def test_requests_from_the_start_never_see_a_loading_503(tmp_path):
    url, proc = start_gunicorn(tmp_path, WORKERS="2")
    try:
        statuses, deadline = [], time.time() + 120
        while time.time() < deadline and statuses.count(200) < 60:
            statuses.append(post(url))
            if statuses[-1] != 200 and not statuses.count(200):
                time.sleep(0.05)  # not listening yet: try again
        first = statuses.index(200)
        assert 503 not in statuses, statuses
        assert statuses[first:] == [200] * len(statuses[first:]), statuses[first:]
        # The second worker takes connections once its models are loaded, which may be after the
        # first 60 answers: both answer within a bounded wait (and none ever answered 503 above).
        workers: set = set()
        until = time.time() + 120
        while len(workers) < 2 and time.time() < until:
            workers.add(requests.get(f"{url}/health", headers={"Connection": "close"}, timeout=10).json()["pid"])
            time.sleep(0.05)
        assert len(workers) == 2
    finally:
        stop(proc)


def test_killing_a_worker_under_load_gives_no_503(tmp_path):
    url, proc = start_gunicorn(tmp_path, WORKERS="2")
    try:
        from support.servers import wait_healthy

        wait_healthy(url, proc, workers=2)
        pids = {requests.get(f"{url}/health", headers={"Connection": "close"}, timeout=10).json()["pid"] for _ in range(12)}
        victim = min(pids)
        statuses: list = []
        stop_at = [time.time() + 600]

        def load() -> None:
            while time.time() < stop_at[0]:
                statuses.append(post(url))

        threads = [threading.Thread(target=load) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        os.kill(victim, signal.SIGKILL)
        deadline = time.time() + 90
        while time.time() < deadline:  # until the replacement serves
            alive = {requests.get(f"{url}/health", headers={"Connection": "close"}, timeout=10).json()["pid"] for _ in range(6)}
            if len(alive) == 2 and victim not in alive:
                break
            time.sleep(0.5)
        stop_at[0] = time.time() + 2
        for thread in threads:
            thread.join(30)
        assert 503 not in statuses, [s for s in statuses if s != 200][:10]
        failed = [s for s in statuses if s != 200]
        assert len(failed) <= 4, failed  # at most the requests in flight on the killed worker
        assert statuses.count(200) > 20
    finally:
        stop(proc)



def test_the_load_sends_heartbeats_so_the_worker_timeout_never_fires(monkeypatch):
    """`load_engines` runs before the worker's loop, which is what normally tells Gunicorn's master
    the worker is alive: it must do so itself for as long as the load takes, more often than the
    worker timeout."""
    from embedding_service.process import boot as worker
    from embedding_service.inference.registry import Registry
    from embedding_service.inference.runtime import Runtime
    from embedding_service.config.settings import Settings
    from embedding_service.operations.state import Phase, ServiceState, WorkerInfo

    settings = Settings.from_mapping({"LOG_LEVEL": "WARNING", "METRICS": "false", "TIMEOUT": "1"})
    state = ServiceState.create(settings, WorkerInfo(device="cpu"))
    monkeypatch.setattr(Registry, "load", staticmethod(lambda settings, runtime: time.sleep(1.0) or object()))
    monkeypatch.setattr(worker, "_state", state)
    monkeypatch.setattr(worker, "_pending", (settings, Runtime.local(settings, "cpu")))
    beats: list[float] = []
    started = time.monotonic()
    worker.load_engines(lambda: beats.append(time.monotonic()))
    gaps = [b - a for a, b in zip([started, *beats], beats)]
    assert state.phase is Phase.READY
    assert len(beats) >= 3 and max(gaps) < settings.timeout / 2, gaps


def test_two_servers_on_one_host_have_their_own_control_sockets(tmp_path):
    """Gunicorn's control socket is derived from the bind address, so two servers never share it."""
    import stat
    import tempfile

    servers = [start_gunicorn(tmp_path, WORKERS="1") for _ in range(2)]
    try:
        from support.servers import wait_healthy

        paths = []
        for url, proc in servers:
            wait_healthy(url, proc, workers=1)
            port = url.rsplit(":", 1)[1]
            paths.append(os.path.join(tempfile.gettempdir(), f"embedding-service-127.0.0.1-{port}.ctl"))
        assert paths[0] != paths[1]
        for path in paths:
            for _ in range(50):  # the master creates it once it runs
                if os.path.exists(path):
                    break
                time.sleep(0.1)
            assert stat.S_ISSOCK(os.stat(path).st_mode), path
    finally:
        for _, proc in servers:
            stop(proc)


def test_connections_open_at_sigterm_are_answered_not_reset(tmp_path):
    """Clients that connected before the worker was told to stop, and send their request only
    afterwards, get a full response (the worker stops accepting, then serves the connections it
    holds for up to GRACEFUL_TIMEOUT), not a reset. Connections still in the listen backlog are
    what the Kubernetes preStop delay keeps empty (README, Processes)."""
    import socket

    url, proc = start_gunicorn(tmp_path, WORKERS="1", THREADS="4", GRACEFUL_TIMEOUT="20")
    try:
        from support.servers import wait_healthy

        wait_healthy(url, proc)
        port = int(url.rsplit(":", 1)[1])
        body = b'{"input": "sent after SIGTERM"}'
        request = (b"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        clients = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(12)]
        time.sleep(0.3)  # accepted by the worker, nothing read yet
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # the worker has stopped accepting
        for client in clients:
            client.sendall(request)
        replies = []
        for client in clients:
            chunks = []
            try:
                while chunk := client.recv(65536):
                    chunks.append(chunk)
            except OSError as exc:  # a reset
                chunks.append(type(exc).__name__.encode())
            finally:
                client.close()
            replies.append(b"".join(chunks))
        statuses = [reply.split(b"\r\n", 1)[0] for reply in replies]
        assert statuses == [b"HTTP/1.1 200 OK"] * len(clients), statuses
        assert all(b'"embedding"' in reply for reply in replies)
        assert proc.wait(timeout=25) == 0
    finally:
        stop(proc)
