"""The dynamic batcher: shared forward passes, order, splitting, failure isolation, backpressure;
and the same properties through the HTTP layer on the real MiniLM."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from conftest import serve
from embedding_service.process.boot import local_app
from embedding_service.inference.batch_plan import BatchBounds
from embedding_service.inference.batching import Batcher
from embedding_service.domain.errors import InternalError, Unavailable
from embedding_service.http.errors import error_headers
from embedding_service.models.items import TokenIds
from embedding_service.config.settings import Settings


class FakeModel:
    """forward returns [first id, length] per item, after `delay` seconds; records batch sizes."""

    name = "fake"
    dimension = 2

    def __init__(self, delay: float = 0.02, poison: int = -1):
        self.lock = threading.Lock()
        self.delay = delay
        self.poison = poison
        self.batches: list[int] = []

    def forward(self, items):
        time.sleep(self.delay)
        self.batches.append(len(items))
        if any(item.ids[0] == self.poison for item in items):
            raise RuntimeError("poisoned batch")
        return np.array([[item.ids[0], len(item)] for item in items], dtype=np.float32)


def tokens(first: int, length: int = 3) -> TokenIds:
    return TokenIds([first] + [0] * (length - 1))


def test_concurrent_requests_share_forward_passes_and_keep_order():
    model = FakeModel(delay=0.05)
    batcher = Batcher(model, BatchBounds(max_batch_size=16, max_batch_tokens=10_000), observer=None, cpu_share=None)
    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda i: batcher.run([tokens(i, 2 + i % 3)]), range(12)))
    for i, out in enumerate(results):
        assert out.tolist() == [[i, 2 + i % 3]]
    assert batcher.stats.batches < 12 and batcher.stats.largest_batch > 1
    assert sum(model.batches) == 12


def test_large_request_is_split_and_reassembled_in_order():
    model = FakeModel(delay=0.0)
    batcher = Batcher(model, BatchBounds(max_batch_size=8, max_batch_tokens=10_000), observer=None, cpu_share=None)
    items = [tokens(i, 1 + (i * 7) % 13) for i in range(70)]
    out = batcher.run(items)
    assert out[:, 0].tolist() == list(range(70))
    assert out[:, 1].tolist() == [len(item) for item in items]
    assert max(model.batches) <= 8 and len(model.batches) >= 9


def test_a_failing_batch_fails_only_its_requests():
    model = FakeModel(delay=0.05, poison=99)
    batcher = Batcher(model, BatchBounds(max_batch_size=1, max_batch_tokens=10_000), observer=None, cpu_share=None)  # one item per pass
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(batcher.run, [tokens(n)]) for n in (1, 99, 2, 3)]
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result()[0, 0])
            except InternalError as err:
                outcomes.append(err)
    assert isinstance(outcomes[1], InternalError) and "retry" in outcomes[1].message
    assert "poisoned" not in outcomes[1].message
    assert [outcomes[0], outcomes[2], outcomes[3]] == [1, 2, 3]
    assert batcher.run([tokens(5)])[0, 0] == 5  # the batcher thread survived


def test_queue_full_is_503_with_retry_after_then_drains():
    model = FakeModel(delay=0.2)
    batcher = Batcher(model, BatchBounds(max_batch_size=2, max_batch_tokens=10_000, max_queue_size=3), observer=None, cpu_share=None)
    outcomes = []

    def submit(n):
        try:
            outcomes.append(("ok", n, batcher.run([tokens(n)])[0, 0]))
        except Unavailable as err:
            outcomes.append(("busy", n, error_headers(err).get("Retry-After")))

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
        time.sleep(0.005)
    for thread in threads:
        thread.join()
    busy = [o for o in outcomes if o[0] == "busy"]
    accepted = [o for o in outcomes if o[0] == "ok"]
    assert busy and all(o[2] == "1" for o in busy)
    assert accepted and all(o[1] == o[2] for o in accepted)  # every accepted item got its own row
    assert batcher.stats.rejected == len(busy)
    assert batcher.run([tokens(42)])[0, 0] == 42 and batcher.queued == 0


def test_items_of_different_types_never_share_a_pass():
    class Other:
        def __init__(self, n):
            self.ids = [n]

        def __len__(self):
            return 1

    kinds = []

    class TypedModel(FakeModel):
        def forward(self, items):
            kinds.append({type(item).__name__ for item in items})
            return super().forward(items)

    batcher = Batcher(TypedModel(delay=0.03), BatchBounds(max_batch_size=16, max_batch_tokens=10_000), observer=None, cpu_share=None)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: batcher.run([tokens(n) if n % 2 else Other(n)]), range(8)))
    assert all(len(k) == 1 for k in kinds)


# ------------------------------------------------------------------ through HTTP, real MiniLM
@pytest.fixture(scope="module")
def busy_server():
    """MiniLM behind a small queue (MAX_QUEUE_SIZE=4) on a threaded server."""
    app = local_app(Settings.from_mapping({"MAX_QUEUE_SIZE": "4", "MAX_BATCH_SIZE": "4", "DEVICE": "cpu", "LOG_LEVEL": "WARNING"}))
    url, server = serve(app)
    yield url, app
    server.shutdown()


def test_http_burst_gets_tei_429s_and_correct_vectors(busy_server):
    """TEI's /embed answers a full queue as TEI does: 429 with `error_type` Overloaded (503
    elsewhere)."""
    url, app = busy_server
    texts = [f"sentence number {i} about cats and markets " * 6 for i in range(48)]
    expected = {t: np.array(requests.post(f"{url}/embed", json={"inputs": t}, timeout=60).json()[0]) for t in texts[:6]}
    with ThreadPoolExecutor(48) as pool:
        responses = list(pool.map(lambda t: requests.post(f"{url}/embed", json={"inputs": t}, timeout=60), texts))
    statuses = [r.status_code for r in responses]
    assert 429 in statuses and 200 in statuses and set(statuses) <= {200, 429}, statuses
    for text, resp in zip(texts, responses):
        if resp.status_code == 429:
            assert resp.headers["Retry-After"] == "1" and resp.json()["error_type"] == "Overloaded"
            assert "MAX_QUEUE_SIZE" in resp.json()["error"]
        elif text in expected:
            assert np.abs(np.array(resp.json()[0]) - expected[text]).max() <= 1e-5
    after = requests.post(f"{url}/embed", json={"inputs": texts[0]}, timeout=60)
    assert after.status_code == 200 and np.abs(np.array(after.json()[0]) - expected[texts[0]]).max() <= 1e-5


def test_http_requests_are_batched_and_equal_unbatched(live_url, app):
    texts = [f"a short text {i}" for i in range(24)]
    alone = [np.array(requests.post(f"{live_url}/embed", json={"inputs": t}, timeout=60).json()[0]) for t in texts]
    stats = app.extensions["embedding_service"].engines.find("sentence-transformers/all-MiniLM-L6-v2").batcher.stats
    before_batches, before_items = stats.batches, stats.items
    with ThreadPoolExecutor(24) as pool:
        responses = list(pool.map(lambda t: requests.post(f"{live_url}/embed", json={"inputs": t}, timeout=60), texts))
    passes, items = stats.batches - before_batches, stats.items - before_items
    assert items == 24 and passes < 24, (passes, items)
    for vector, resp in zip(alone, responses):
        assert np.abs(np.array(resp.json()[0]) - vector).max() <= 1e-5
        for header in ("X-Total-Time", "X-Queue-Time", "X-Inference-Time", "X-Tokenization-Time"):
            assert float(resp.headers[header]) >= 0
        assert float(resp.headers["X-Inference-Time"]) > 0


def test_a_small_request_is_not_stuck_behind_a_large_one():
    """Requests take turns: a one-item request queued behind a 40-batch request rides in one of
    the next forward passes instead of waiting for the whole large request."""
    model = FakeModel(delay=0.02)
    batcher = Batcher(model, BatchBounds(max_batch_size=4, max_batch_tokens=10_000), observer=None, cpu_share=None)
    done = {}

    def large():
        batcher.run([tokens(i, 5) for i in range(160)])
        done["large"] = time.perf_counter()

    thread = threading.Thread(target=large)
    thread.start()
    time.sleep(0.05)  # the large request's first passes are running
    began = time.perf_counter()
    assert batcher.run([tokens(7, 5)])[0, 0] == 7
    small = time.perf_counter() - began
    thread.join(10)
    assert small < 0.02 * 4, small  # at most a couple of passes, not the 40 the large one needs
    assert done["large"] - began > small
