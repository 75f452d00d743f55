"""What an operator does to a running Gunicorn, under a 16-client load (real Gunicorn, 2 CPU
workers): TTIN beyond the device slots is refused with a log line instead of crashing the master;
TTOU and TTIN within them work; a HUP reload keeps every live worker on its own slot. No request
fails, none gets a 503, and `/health` of the workers shows distinct slots after each step."""

from __future__ import annotations

import signal
import threading
import time

import pytest
import requests

from support.servers import post_status, start_gunicorn, stop, wait_healthy

pytestmark = pytest.mark.slow
BODY = {"input": "a short text"}


def post(url: str) -> object:
    return post_status(url, BODY)


def live_slots(url: str, workers: int, seconds: float = 60) -> dict[int, int]:
    """pid -> slot of the workers answering `/health`, once exactly `workers` distinct pids have
    answered in a row of 40 fresh connections (old workers of a reload have left by then)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        seen: dict[int, int] = {}
        for _ in range(40):
            body = requests.get(f"{url}/health", headers={"Connection": "close"}, timeout=10).json()
            seen[body["pid"]] = body["slot"]
        if len(seen) == workers:
            return seen
        time.sleep(0.5)
    raise AssertionError(f"not {workers} workers answering: {seen}")


def test_ttin_ttou_and_hup_under_load_keep_serving_with_consistent_slots(tmp_path):
    url, proc = start_gunicorn(tmp_path, WORKERS="2", THREADS="8")
    log = tmp_path / next(p.name for p in tmp_path.iterdir() if p.name.startswith("gunicorn-"))
    statuses: list = []
    running = threading.Event()
    running.set()

    def client() -> None:
        deadline = time.time() + 240  # bounded, whatever happens to the test
        while running.is_set() and time.time() < deadline:
            statuses.append(post(url))

    try:
        wait_healthy(url, proc, workers=2)
        before = live_slots(url, 2)
        assert sorted(before.values()) == [0, 1]
        clients = [threading.Thread(target=client, daemon=True) for _ in range(16)]
        for thread in clients:
            thread.start()
        time.sleep(1)

        proc.send_signal(signal.SIGTTIN)  # a third worker: there are 2 slots
        time.sleep(3)
        assert proc.poll() is None, "the master exited on TTIN"
        assert "refusing 3 workers: there are 2 device slots" in log.read_text()
        assert live_slots(url, 2) == before

        proc.send_signal(signal.SIGTTOU)  # one worker
        one = live_slots(url, 1)
        proc.send_signal(signal.SIGTTIN)  # two again, the new one on the free slot
        two = live_slots(url, 2)
        assert sorted(two.values()) == [0, 1] and set(one.items()) <= set(two.items())

        proc.send_signal(signal.SIGHUP)  # reload: new workers, the old ones retire
        deadline = time.time() + 90
        while time.time() < deadline:
            after = live_slots(url, 2)
            if not set(after) & set(two):
                break
        assert not set(after) & set(two), "the reload left old workers running"
        assert sorted(after.values()) == [0, 1], after
        proc.send_signal(signal.SIGTTIN)  # and TTIN after the reload is still refused
        time.sleep(3)
        assert proc.poll() is None and live_slots(url, 2) == after
    finally:
        running.clear()
        time.sleep(0.5)
        stop(proc)
    assert statuses and statuses.count(200) == len(statuses), {s: statuses.count(s) for s in set(statuses)}
