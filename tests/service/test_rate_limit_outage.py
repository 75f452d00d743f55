"""A frozen rate-limit storage (a real redis-server stopped with SIGSTOP) under a 16-client load:
requests keep being served at at least 0.8 x the unfrozen rate (RATE_LIMIT_ON_STORAGE_ERROR=open),
and once the outage is known the storage is tried at most once per PROBE_SECONDS, counted from
when the last try ended, by one thread at a time."""

from __future__ import annotations

import signal
import threading
import time

import pytest
import requests
from prometheus_client import REGISTRY

from conftest import load_registry, serve
from support.servers import start_redis
from embedding_service.config.settings import Settings
from embedding_service.http import rate_limit_storage
from embedding_service.process.boot import local_app

pytestmark = pytest.mark.slow
BODY = {"input": "a cat sits on the mat"}


def storage_errors() -> float:
    return REGISTRY.get_sample_value("embedding_rate_limit_storage_errors_total") or 0.0


def served_in(url: str, seconds: float, clients: int = 16) -> int:
    """Requests answered 200 by `clients` threads in `seconds` (each request on its own connection)."""
    done, stop_at = [], time.monotonic() + seconds

    def client() -> None:
        session = requests.Session()
        while time.monotonic() < stop_at:
            resp = session.post(f"{url}/v1/embeddings", json=BODY, timeout=30)
            assert resp.status_code == 200, resp.text
            done.append(1)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    return len(done)


def test_a_frozen_storage_costs_one_probe_per_interval_and_no_throughput(tmp_path):
    port, redis = start_redis(tmp_path)
    try:
        registry = load_registry(Settings.from_mapping({"LOG_LEVEL": "WARNING"}))
        app = local_app(Settings.from_mapping({
            "LOG_LEVEL": "WARNING", "DEVICE": "cpu", "RATE_LIMIT_REQUESTS": "1000000",
            "RATE_LIMIT_STORAGE_URI": f"redis://127.0.0.1:{port}/0", "RATE_LIMIT_ON_STORAGE_ERROR": "open",
        }), engines=registry)
        url, server = serve(app)
        served_in(url, 2)  # warm
        unfrozen = served_in(url, 5)
        redis.send_signal(signal.SIGSTOP)
        served_in(url, 3)  # the outage is found: the calls in flight then each wait out the timeout
        errors = storage_errors()
        frozen = served_in(url, 5)
        probes = storage_errors() - errors
        redis.send_signal(signal.SIGCONT)
        server.shutdown()
    finally:
        redis.send_signal(signal.SIGCONT)
        redis.terminate()
        redis.wait(timeout=10)
    assert frozen >= 0.8 * unfrozen, (frozen, unfrozen)
    # A try fails after REDIS_TIMEOUT; the next comes PROBE_SECONDS after it ends.
    interval = rate_limit_storage.PROBE_SECONDS + rate_limit_storage.REDIS_TIMEOUT
    assert 1 <= probes <= 5 / interval + 1, (probes, frozen, unfrozen)
    print(f"[rate-limit outage] unfrozen {unfrozen}, frozen {frozen} requests in 5 s; {probes:.0f} storage tries")
