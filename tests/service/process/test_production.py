"""Production hardening through real Gunicorn: a rate limit shared by 2 workers through a real Redis, metrics
summed over workers and surviving a restart, and SIGTERM draining an in-flight request."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import requests

from support.servers import start_gunicorn, start_redis, stop, wait_healthy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A real redis-server on loopback (`.ci/run` installs Debian's package)."""
    port, proc = start_redis(tmp_path_factory.mktemp("redis"))
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


def fresh(url: str, path: str, key: str = "", **kwargs) -> requests.Response:
    """One request on a new connection, so Gunicorn's workers take turns."""
    headers = {"Connection": "close", **({"Authorization": f"Bearer {key}"} if key else {})}
    return requests.get(f"{url}{path}", headers=headers, timeout=30, **kwargs)


def test_rate_limit_holds_across_workers_with_redis(tmp_path, redis_url):
    keys = [f"key-{i}" for i in range(12)]
    url, proc = start_gunicorn(
        tmp_path, WORKERS="2", API_KEYS=",".join(keys), RATE_LIMIT_REQUESTS="5", RATE_LIMIT_WINDOW="60",
        RATE_LIMIT_STORAGE_URI=redis_url,
    )
    try:
        wait_healthy(url, proc, workers=2)
        for key in keys:  # a key whose 5 allowed requests were served by both workers
            served = [fresh(url, "/info", key) for _ in range(5)]
            assert all(r.status_code == 200 for r in served)
            if len({r.json()["pid"] for r in served}) == 2:
                break
        else:
            pytest.fail("the 5 requests of every key went to one worker")
        sixth = fresh(url, "/info", key)
        assert sixth.status_code == 429
        assert int(sixth.headers["Retry-After"]) > 0 and sixth.headers["X-RateLimit-Limit"] == "5"
        assert sixth.json()["error_type"] == "Overloaded"  # /info is TEI's: TEI's body and type for a 429
        for _ in range(4):  # whichever worker answers, the count is shared
            assert fresh(url, "/info", key).status_code == 429
        unused = keys[-1] if key != keys[-1] else keys[0]
        assert fresh(url, "/info", unused).status_code == 200
    finally:
        stop(proc)


def metric(url: str, name: str, labels: str) -> float:
    text = fresh(url, "/metrics").text
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(part in line for part in labels.split(",")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_sum_over_workers_and_survive_a_restart(tmp_path):
    url, proc = start_gunicorn(tmp_path, WORKERS="2")
    try:
        wait_healthy(url, proc, workers=2)
        pids = set()
        for i in range(20):
            resp = requests.post(f"{url}/v1/embeddings", json={"input": f"text {i}"}, headers={"Connection": "close"}, timeout=30)
            assert resp.status_code == 200
            pids.add(fresh(url, "/health").json()["pid"])
        assert len(pids) == 2
        ok = 'route="/v1/embeddings",method="POST",status="200"'
        assert metric(url, "embedding_requests_total", ok) == 20
        assert metric(url, "embedding_items_total", 'model="sentence-transformers/all-MiniLM-L6-v2"') == 20
        victim = next(iter(pids))
        os.kill(victim, signal.SIGKILL)
        deadline = time.time() + 90
        while time.time() < deadline:
            alive = {fresh(url, "/health").json()["pid"] for _ in range(6)}
            if len(alive) == 2 and victim not in alive:
                break
            time.sleep(0.2)
        wait_healthy(url, proc, workers=2)
        assert metric(url, "embedding_requests_total", ok) == 20  # the dead worker's counts are kept
        requests.post(f"{url}/v1/embeddings", json={"input": "after"}, timeout=30)
        assert metric(url, "embedding_requests_total", ok) == 21
    finally:
        stop(proc)


def test_sigterm_drains_in_flight_requests(tmp_path):
    url, proc = start_gunicorn(tmp_path, WORKERS="1", GRACEFUL_TIMEOUT="60")  # room for a loaded machine
    try:
        wait_healthy(url, proc)
        session = requests.Session()  # a kept-alive connection, opened before SIGTERM
        assert session.get(f"{url}/ready", timeout=10).status_code == 200
        slow_texts = [f"sentence {i} " + "word " * 120 for i in range(400)]
        result = {}

        def slow():
            started = time.time()
            resp = requests.post(f"{url}/embed", json={"inputs": slow_texts}, timeout=120)
            result.update(status=resp.status_code, rows=len(resp.json()), seconds=time.time() - started, done=time.time())

        thread = threading.Thread(target=slow)
        thread.start()
        time.sleep(1.0)  # the request is in flight
        assert thread.is_alive()
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        draining = session.get(f"{url}/ready", timeout=10)
        assert draining.status_code == 503 and draining.json()["status"] == "draining"
        thread.join(timeout=90)
        assert result.get("status") == 200 and result["rows"] == 400
        proc.wait(timeout=65)
        assert time.time() - result["done"] <= 5, "the master exits once the last request is done"
    finally:
        stop(proc)
