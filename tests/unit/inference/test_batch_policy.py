"""The batcher's policy: batches grown around the next request's item by length, under the token
target and the padding bound; priorities; the waiting bound; metrics of real and padded tokens."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from embedding_service.inference.batch_plan import BatchBounds, batch_cost, grow_batch
from embedding_service.inference.batching import Batcher
from embedding_service.inference.jobs import Job as _Job, request_priority
from embedding_service.models.items import TokenIds


class RecordingModel:
    """forward returns [first id, length] per item after `delay` seconds (or `per_token` seconds
    per token computed); records each batch's lengths."""

    name = "fake"
    dimension = 2

    def __init__(self, delay: float = 0.0, unpadded: bool = False, per_token: float = 0.0):
        self.lock = threading.Lock()
        self.delay, self.unpadded, self.per_token = delay, unpadded, per_token
        self.batches: list[list[int]] = []
        self.firsts: list[list[int]] = []

    def forward(self, items):
        lengths = [len(item) for item in items]
        time.sleep(self.delay + self.per_token * batch_cost(lengths, self.unpadded))
        self.batches.append(lengths)
        self.firsts.append([item.ids[0] for item in items])
        return np.array([[item.ids[0], len(item)] for item in items], dtype=np.float32)


def item(first: int, length: int) -> TokenIds:
    return TokenIds([first] + [0] * (length - 1))


def bounds(**overrides) -> BatchBounds:
    values = dict(max_batch_size=32, max_batch_tokens=16384, target_batch_tokens=2048, max_padding=1.25)
    values.update(overrides)
    return BatchBounds(**values)


def test_grow_batch_keeps_a_padded_batch_within_the_padding_bound_and_the_target():
    lengths = [40, 400, 38, 410, 12, 42, 45, 390, 41, 9]
    chosen = grow_batch(0, range(len(lengths)), lengths, bounds(), unpadded=False)
    # the lengths near 40, and 12 (6 x 45 = 270 padded for 218 real: 1.24), but not 9 (1.39) nor the long ones
    assert chosen[0] == 0 and sorted(chosen) == [0, 2, 4, 5, 6, 8]
    picked = [lengths[i] for i in chosen]
    assert batch_cost(picked, False) <= 1.25 * sum(picked)
    long = grow_batch(1, range(len(lengths)), lengths, bounds(target_batch_tokens=1000), unpadded=False)
    assert sorted(lengths[i] for i in long) == [400, 410]  # 410 before 390 on a tie (candidate order); 3 x 410 > 1000


def test_grow_batch_unpadded_counts_real_tokens():
    lengths = [400, 10, 10, 300, 20, 500]
    chosen = grow_batch(0, range(len(lengths)), lengths, bounds(target_batch_tokens=750), unpadded=True)
    assert sum(lengths[i] for i in chosen) <= 750 and 3 in chosen and 5 not in chosen
    everything = grow_batch(0, range(len(lengths)), lengths, bounds(target_batch_tokens=5000), unpadded=True)
    assert sorted(everything) == list(range(6))  # no padding to pay: mixed lengths ride together


def run_concurrently(batcher: Batcher, requests: list[tuple[list[TokenIds], int]], stagger: float = 0.0):
    """Each request on its own thread with its priority; returns (outputs, finish times)."""
    finished: dict[int, float] = {}

    def one(index: int):
        items, priority = requests[index]
        time.sleep(stagger * index)
        request_priority.set(priority)
        out = batcher.run(items)
        finished[index] = time.perf_counter()
        return out

    with ThreadPoolExecutor(len(requests)) as pool:
        outputs = list(pool.map(one, range(len(requests))))
    return outputs, finished


def test_mismatched_lengths_never_share_a_padded_pass_and_every_output_is_in_order():
    model = RecordingModel(per_token=2e-6)
    batcher = Batcher(model, bounds(max_batch_size=16), observer=None, cpu_share=None)
    rng = np.random.default_rng(0)
    requests = []
    for r in range(8):
        lengths = np.minimum(450, np.maximum(3, rng.lognormal(np.log(40), 0.9, size=24))).astype(int)
        requests.append(([item(r * 100 + i, int(n)) for i, n in enumerate(lengths)], 0))
    outputs, _ = run_concurrently(batcher, requests)
    for (items, _), out in zip(requests, outputs):
        assert out[:, 0].tolist() == [i.ids[0] for i in items] and out[:, 1].tolist() == [len(i) for i in items]
    for lengths in model.batches:
        assert len(lengths) <= 16 and (len(lengths) == 1 or batch_cost(lengths, False) <= 1.25 * sum(lengths))
    assert batcher.stats.padded_tokens <= 1.25 * batcher.stats.real_tokens
    assert batcher.stats.real_tokens == sum(len(i) for items, _ in requests for i in items)


def test_a_more_urgent_request_goes_in_the_next_pass():
    model = RecordingModel(delay=0.02)
    batcher = Batcher(model, bounds(max_batch_size=4, bulk_lane=False), observer=None, cpu_share=None)
    bulk = ([item(1000 + i, 8) for i in range(64)], 10)
    query = ([item(1, 8)], 0)
    _, finished = run_concurrently(batcher, [bulk, query], stagger=0.05)
    passes = [i for i, firsts in enumerate(model.firsts) if 1 in firsts]
    assert passes and passes[0] <= 4  # queued after about 2 passes, served in the next
    assert model.firsts[passes[0]] == [1]  # bulk items of a later priority do not ride with it
    assert finished[1] < finished[0]


def test_no_request_waits_longer_than_the_bound_under_a_flood_of_urgent_ones():
    wait_ms, delay = 150, 0.01
    model = RecordingModel(delay=delay)
    batcher = Batcher(model, bounds(max_batch_size=2, max_priority_wait_ms=wait_ms, bulk_lane=False), observer=None,
                      cpu_share=None)
    stop = time.perf_counter() + 1.2
    gaps: list[float] = []

    def flood(seed: int):
        request_priority.set(0)
        while time.perf_counter() < stop:
            batcher.run([item(seed, 5), item(seed, 5)])

    def low():
        request_priority.set(5)
        began = time.perf_counter()
        out = batcher.run([item(7777, 5) for _ in range(6)])
        gaps.append(time.perf_counter() - began)
        return out

    with ThreadPoolExecutor(5) as pool:
        floods = [pool.submit(flood, s) for s in range(4)]
        time.sleep(0.1)
        slow = pool.submit(low)
        slow.result(timeout=10)
        for f in floods:
            f.result(timeout=10)
    # 6 items at one per overdue pass: each waits at most the bound plus the pass in flight and its own.
    assert gaps[0] <= 6 * (wait_ms / 1000 + 3 * delay) + 0.2
    assert batcher.stats.overdue_batches >= 1
    served = [i for i, firsts in enumerate(model.firsts) if 7777 in firsts]
    assert len(served) >= 1 and served[0] < len(model.firsts) - 1  # served while the flood went on


def test_within_a_priority_requests_take_turns():
    model = RecordingModel(delay=0.01)
    batcher = Batcher(model, bounds(max_batch_size=2), observer=None, cpu_share=None)
    big = ([item(500 + i, 50) for i in range(20)], 0)
    small = ([item(1, 50)], 0)
    _, finished = run_concurrently(batcher, [big, small], stagger=0.03)
    assert finished[1] < finished[0]
    first = next(i for i, firsts in enumerate(model.firsts) if 1 in firsts)
    assert first <= 5


def test_bulk_requests_run_on_their_own_lane_and_never_delay_an_interactive_one():
    model = RecordingModel(delay=0.25)
    batcher = Batcher(model, bounds(max_batch_size=4), observer=None, cpu_share=None)
    bulk = ([item(1000 + i, 8) for i in range(8)], 10)  # a later priority: the bulk lane
    large = ([item(2000 + i, 600) for i in range(4)], 0)  # 2400 tokens > TARGET_BATCH_TOKENS: the bulk lane
    query = ([item(1, 8)], 0)
    began = time.perf_counter()
    _, finished = run_concurrently(batcher, [bulk, large, query], stagger=0.03)
    # The query was queued at 0.06 s while bulk passes of 0.25 s ran; it took one pass of its own.
    assert finished[2] - began < 0.06 + 0.25 + 0.15
    assert finished[2] < min(finished[0], finished[1])
    assert [1] in model.firsts


def test_a_bulk_request_starved_on_its_lane_is_taken_by_the_interactive_one():
    model = RecordingModel(delay=0.01)
    batcher = Batcher(model, bounds(max_priority_wait_ms=50), observer=None, cpu_share=None)
    job_items = [item(5, 8)]
    job = _Job(job_items, [8], np.empty((1, 2), dtype=np.float32), 1, time.perf_counter() - 1.0, priority=10, lane=1)
    batcher._jobs.append(job)
    batcher._depth += 1
    assert batcher._take(0) != []  # overdue: the interactive lane serves it
    assert batcher.stats.overdue_batches == 1
    fresh = _Job(job_items, [8], np.empty((1, 2), dtype=np.float32), 1, time.perf_counter(), priority=10, lane=1)
    batcher._jobs.append(fresh)
    batcher._depth += 1
    assert batcher._take(0) == [] and batcher._take(1) == [(fresh, 0)]


def test_identical_concurrent_requests_all_complete():
    """Requests with equal items are distinct requests: each leaves the queue as itself, also when
    a later one finishes first."""
    model = RecordingModel(delay=0.005)
    batcher = Batcher(model, bounds(max_batch_size=8, target_batch_tokens=64, bulk_lane=False), observer=None,
                      cpu_share=None)
    same = [item(3, 5 + i % 4) for i in range(40)]
    requests = [(same, 5)] + [(same, 0)] * 6
    outputs, finished = run_concurrently(batcher, requests, stagger=0.01)
    for out in outputs:
        assert out[:, 1].tolist() == [len(i) for i in same]
    assert finished[0] == max(finished.values())  # the later, more urgent ones left the queue first
    assert batcher.queued == 0 and batcher.stats.items == 7 * 40


def test_a_fault_in_choosing_a_batch_fails_the_waiting_requests_and_the_next_one_is_served(monkeypatch):
    from embedding_service.domain.errors import InternalError
    from embedding_service.inference import batching

    model = RecordingModel(delay=0.0)
    batcher = Batcher(model, bounds(), observer=None, cpu_share=None)

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the batch choice")

    with monkeypatch.context() as patch:
        patch.setattr(batching, "grow_batch", broken)
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(batcher.run, [item(1, 4), item(2, 6)])
            try:
                future.result(timeout=10)
            except InternalError as error:
                assert "batching failed" in str(error)
            else:
                raise AssertionError("the request was served by a broken batch choice")
    assert batcher.queued == 0
    assert batcher.run([item(3, 4)])[:, 0].tolist() == [3]
