"""What an operator does to a running Gunicorn, under a 16-client load (real Gunicorn, 2 CPU
workers): TTIN, or the control socket's `worker add`, beyond the device slots is refused with a
log line instead of crashing the master; TTOU, TTIN, `worker remove` and `worker add` within them
work; a HUP reload keeps every live worker on its own slot; a USR2 re-exec starts a new master
whose workers take the same slots, and stopping the old master leaves it serving alone. No
request fails, none gets a 503, and `/health` of the workers shows the slots after each step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import requests

from support.servers import post_status, start_gunicorn, stop, wait_healthy

pytestmark = pytest.mark.slow
BODY = {"input": "a short text"}


def post(url: str) -> object:
    return post_status(url, BODY)


class Load:
    """`clients` threads posting a short text until stopped, each loop bounded to 240 s whatever
    happens to the test; `statuses` holds every answer (or the exception's name)."""

    def __init__(self, url: str, clients: int = 16):
        self.url, self.statuses = url, []
        self.running = threading.Event()
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def _client(self) -> None:
        deadline = time.time() + 240
        while self.running.is_set() and time.time() < deadline:
            self.statuses.append(post(self.url))

    def start(self) -> None:
        self.running.set()
        for thread in self.threads:
            thread.start()
        time.sleep(1)

    def stop(self) -> None:
        self.running.clear()
        time.sleep(0.5)

    def assert_all_served(self) -> None:
        statuses = self.statuses
        assert statuses and statuses.count(200) == len(statuses), {s: statuses.count(s) for s in set(statuses)}


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
    load = Load(url)

    try:
        wait_healthy(url, proc, workers=2)
        before = live_slots(url, 2)
        assert sorted(before.values()) == [0, 1]
        load.start()

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
        load.stop()
        stop(proc)
    load.assert_all_served()


def control(url: str, command: str) -> str:
    """One command on the instance's control socket (gunicorn.conf.py derives its path from the bind address)."""
    host, port = url.rsplit("/", 1)[-1].split(":")
    socket_path = os.path.join(tempfile.gettempdir(), f"embedding-service-{host}-{port}.ctl")
    gunicornc = os.path.join(os.path.dirname(sys.executable), "gunicornc")
    done = subprocess.run([gunicornc, "-s", socket_path, "-c", command], capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def children(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            found += [int(child) for child in handle.read().split()]
    return found


def test_control_socket_add_remove_and_usr2_under_load_keep_serving_with_consistent_slots(tmp_path):
    url, proc = start_gunicorn(tmp_path, WORKERS="2", THREADS="8")
    log = tmp_path / next(p.name for p in tmp_path.iterdir() if p.name.startswith("gunicorn-"))
    load = Load(url)
    new_master = None

    try:
        wait_healthy(url, proc, workers=2)
        before = live_slots(url, 2)
        load.start()

        control(url, "worker add 1")  # beyond the 2 slots: refused, the master lives
        time.sleep(3)
        assert proc.poll() is None and "refusing 3 workers: there are 2 device slots" in log.read_text()
        assert live_slots(url, 2) == before
        control(url, "worker remove 1")
        one = live_slots(url, 1)
        control(url, "worker add 1")
        two = live_slots(url, 2)
        assert sorted(two.values()) == [0, 1] and set(one.items()) <= set(two.items())

        # USR2: a new master, re-executed, starts its own workers beside the old ones; the old
        # master is then stopped (Gunicorn's upgrade), and the new one serves alone.
        old_workers = set(two)
        proc.send_signal(signal.SIGUSR2)
        deadline = time.time() + 60
        while new_master is None and time.time() < deadline:
            new_master = next((c for c in children(proc.pid) if c not in old_workers), None)
            time.sleep(0.2)
        assert new_master is not None, "USR2 started no new master"
        deadline = time.time() + 120
        while time.time() < deadline and len(children(new_master)) < 2:
            time.sleep(0.5)
        seen = live_slots(url, 4)  # both generations serve meanwhile
        assert sorted(seen.values()) == [0, 0, 1, 1], seen
        proc.send_signal(signal.SIGTERM)  # retire the old master and its workers
        proc.wait(timeout=60)
        after = live_slots(url, 2)
        assert not set(after) & old_workers and sorted(after.values()) == [0, 1], after
    finally:
        load.stop()
        stop(proc)
        if new_master is not None:
            try:
                os.kill(new_master, signal.SIGTERM)
                deadline = time.time() + 30
                while time.time() < deadline and os.path.exists(f"/proc/{new_master}"):
                    time.sleep(0.2)
            except ProcessLookupError:
                pass
    load.assert_all_served()
