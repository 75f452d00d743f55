"""A real Gunicorn (gunicorn.conf.py, 2 CPU workers): both workers serve, a killed worker is
respawned on its slot, and the master never loads torch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import free_port

from support.paths import ROOT
from support.servers import wait_healthy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory):
    port = free_port()
    env = dict(os.environ, WORKERS="2", THREADS="8", PORT=str(port), HOST="127.0.0.1", DEVICE="cpu", LOG_LEVEL="WARNING")
    env.pop("MODELS", None)
    log = open(tmp_path_factory.mktemp("gunicorn") / "gunicorn.log", "w+")
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    proc = subprocess.Popen(
        [gunicorn, "-c", "gunicorn.conf.py", "embedding_service.wsgi:app"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, workers=2)
        yield url, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.seek(0)
        sys.stdout.write(log.read()[-3000:])


def health_by_pid(url: str, rounds: int = 200) -> dict:
    """Hit /v1/embeddings and /health concurrently; pid -> health body of every worker seen."""
    seen: dict = {}

    def one(_):
        requests.post(f"{url}/v1/embeddings", json={"input": ["load " * 50] * 16}, timeout=30)
        body = requests.get(f"{url}/health", timeout=10).json()
        seen[body["pid"]] = body

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(rounds)))
    return seen


def mapped_libraries(pid: int) -> str:
    with open(f"/proc/{pid}/maps") as handle:
        return handle.read()


def test_two_workers_serve_and_master_has_no_torch(gunicorn_server):
    url, proc = gunicorn_server
    workers = health_by_pid(url, rounds=64)
    assert len(workers) == 2, workers
    assert sorted(w["slot"] for w in workers.values()) == [0, 1]
    assert all(w["device"] == "cpu" for w in workers.values())
    assert "libtorch" not in mapped_libraries(proc.pid)
    assert all("libtorch" in mapped_libraries(pid) for pid in workers)  # the check can see torch
    resp = requests.post(
        f"{url}/v1/embeddings",
        json={"input": ["a cat sits on the mat", "a kitten rests on a rug", "the stock market fell"]},
        timeout=30,
    ).json()
    vectors = [d["embedding"] for d in resp["data"]]
    assert [len(v) for v in vectors] == [384, 384, 384]
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731
    assert dot(vectors[0], vectors[1]) > max(dot(vectors[0], vectors[2]), dot(vectors[1], vectors[2]))


def test_killed_worker_respawns_on_its_slot(gunicorn_server):
    url, proc = gunicorn_server
    workers = health_by_pid(url, rounds=64)
    victim_pid, victim = next(iter(workers.items()))
    os.kill(victim_pid, signal.SIGKILL)
    deadline = time.time() + 90
    replacement = None
    while time.time() < deadline and replacement is None:
        try:
            seen = health_by_pid(url, rounds=32)
        except requests.RequestException:
            continue
        replacement = next((b for p, b in seen.items() if p not in workers and b["slot"] == victim["slot"]), None)
    assert replacement is not None, "no respawned worker on the freed slot"
    assert replacement["device"] == victim["device"]
    ready_pids: set = set()
    while time.time() < deadline and replacement["pid"] not in ready_pids:
        resp = requests.get(f"{url}/ready", timeout=5, headers={"Connection": "close"})
        if resp.status_code == 200:
            ready_pids.add(resp.json()["pid"])
    assert replacement["pid"] in ready_pids, "the respawned worker never became ready"
    assert "libtorch" not in mapped_libraries(proc.pid)


def test_development_server_runs_the_same_app():
    port = free_port()
    env = dict(os.environ, PORT=str(port), HOST="127.0.0.1", DEVICE="cpu", LOG_LEVEL="WARNING")
    env.pop("MODELS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "embedding_service"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        vectors = requests.post(f"{url}/embed_text", json={"texts": ["Hello world", "Test embedding"]}, timeout=30).json()
        assert [len(v) for v in vectors] == [384, 384]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_bad_configuration_stops_gunicorn_with_the_variable_named():
    env = dict(os.environ, PORT="not-a-port")
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    done = subprocess.run(
        [gunicorn, "-c", "gunicorn.conf.py", "embedding_service.wsgi:app"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0
    assert "PORT='not-a-port'" in done.stderr
