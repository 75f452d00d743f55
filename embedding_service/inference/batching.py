"""Dynamic batching: one :class:`Batcher` per engine, owning that model's queue.

Request threads prepare their items (tokenise, decode images) and call `run(items)`, which
enqueues them, submits the batcher's turn to the process's compute thread (compute.py: the one
thread that runs torch's work, for every model) and waits. Work is taken as it comes: an idle
model takes the first request at once; work that arrives during a forward pass forms the next
batch; with `BATCH_TIMEOUT_MS` > 0 it may wait that long to fill a batch (holding the compute
thread: other models wait too). Each batch holds at most `MAX_BATCH_SIZE` items and
`MAX_BATCH_TOKENS` padded tokens (items x longest item), groups items of similar length to cut
padding, lets requests take turns (each batch includes the oldest waiting item of the request
served least recently: no starvation, and a small request is not stuck behind a large one), and
runs one forward pass at a time under the model's inference lock. A request larger than a batch
is split and reassembled in order. If a forward pass raises, only the requests with items in that
batch fail. `MAX_QUEUE_SIZE` holds for every request, the first into an empty queue included: a
request with more items than that can never fit and is refused with 413; one that would take the
queue past it is refused at once with 503 + Retry-After.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np

from . import compute
from .compute import Signal
from ..observability.request_stats import current_stats
from .batch_plan import LOOKAHEAD_BATCHES, BatchBounds, BatcherStats, plan_batches
from ..domain.errors import InternalError, LimitExceeded, ServiceError, Unavailable
from ..models.interfaces import Model

log = logging.getLogger("embedding_service.inference.batching")

@dataclass
class _Job:
    items: Sequence[Any]
    #: Each item's length (tokens, or image patches), measured once at enqueue.
    lengths: Sequence[int]
    out: np.ndarray
    remaining: int
    enqueued: float
    done: Signal = field(default_factory=Signal)
    error: Optional[ServiceError] = None
    started: Optional[float] = None
    inference: float = 0.0
    #: When a forward pass last carried items of this request (its queueing time until then):
    #: requests take turns by it.
    served: float = 0.0

    def __post_init__(self) -> None:
        self.served = self.served or self.enqueued


class Batcher:
    """Owns one model's queue; its turns (`take_turn`) run on the process's compute thread.

    `observer` (metrics.BatchObserver) is told of every batch and queue change; `cpu_share`
    (cpu_share.SlotShare) sizes torch's threads around each pass. Both are required arguments:
    pass None explicitly for none.
    """

    def __init__(self, model: Model, limits: BatchBounds, *, observer: Optional[Any], cpu_share: Optional[Any]):
        self.model = model
        self.max_batch_size = limits.max_batch_size
        self.max_batch_tokens = limits.max_batch_tokens
        self.batch_timeout = limits.batch_timeout_ms / 1000.0
        self.max_queue_size = limits.max_queue_size
        self.cpu_share = cpu_share
        self.observer = observer
        self.stats = BatcherStats()
        self._pending: deque[tuple[_Job, int]] = deque()
        self._lock = threading.Lock()  # guards _pending
        #: With BATCH_TIMEOUT_MS, one token per enqueue ends `take_turn`'s wait for a fuller batch.
        self._arrived: "queue.SimpleQueue[None]" = queue.SimpleQueue()

    @property
    def queued(self) -> int:
        """Items waiting for a forward pass now."""
        return len(self._pending)

    def check_fits(self, count: int) -> None:
        """raises LimitExceeded (413) when `count` items could never be queued (more than
        MAX_QUEUE_SIZE). :meth:`run_counted` checks this as it queues; a caller that makes many
        items of few inputs (document chunks) checks their count first, before anything else of
        the request is queued, so the message counts the chunks."""
        if self.max_queue_size and count > self.max_queue_size:
            raise LimitExceeded(
                f"the request makes {count} items for model {self.model.name!r}; at most {self.max_queue_size} "
                "fit in its queue (MAX_QUEUE_SIZE): send fewer inputs, documents or chunks"
            )

    def run(self, items: Sequence[Any], lengths: Optional[Sequence[int]] = None) -> np.ndarray:
        """Embed or score prepared items: (len(items), dimension) float32, input order kept.
        `lengths`: each item's length (tokens, or image patches) where the caller measured them
        already (they batch the items and go to the metrics); measured here otherwise.

        Whether the items fit the queue is checked here, once, as they are queued: raises
        LimitExceeded (413) for more items than MAX_QUEUE_SIZE (they could never be queued);
        Unavailable (503, Retry-After) when they do not fit in the queue now; InternalError (500)
        when the forward pass of a batch holding these items failed.
        """
        if not items:
            return np.zeros((0, self.model.dimension), dtype=np.float32)
        lengths = lengths if lengths is not None else [len(item) for item in items]
        job = _Job(items, lengths, np.empty((len(items), self.model.dimension), dtype=np.float32), len(items),
                   time.perf_counter())
        with self._lock:
            self.check_fits(len(items))
            if self.max_queue_size and len(self._pending) + len(items) > self.max_queue_size:
                self.stats.rejected += 1
                raise Unavailable(
                    f"model {self.model.name!r} is busy: {len(self._pending)} items queued (MAX_QUEUE_SIZE "
                    f"{self.max_queue_size}); retry shortly",
                    retry_after=1,
                )
            self._pending.extend((job, index) for index in range(len(items)))
            depth = len(self._pending)
        if self.batch_timeout > 0:
            self._arrived.put(None)
        compute.submit(self.take_turn)
        if self.observer is not None:
            self.observer.queued(self.model.name, depth)
        job.done.wait()
        stats = current_stats.get()
        if stats is not None:
            stats.queue += (job.started or job.enqueued) - job.enqueued
            stats.inference += job.inference
        if self.observer is not None:
            self.observer.waited(self.model.name, (job.started or job.enqueued) - job.enqueued)
        if job.error is not None:
            raise job.error
        return job.out

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` with the model to itself: under its lock, with torch's threads sized by the
        CPU share, on the process's compute thread (compute.py), where every forward pass runs."""
        return compute.run(self._exclusive, fn, args)

    def _exclusive(self, fn: Callable[..., Any], args: tuple) -> Any:
        with self.model.lock:
            if self.cpu_share is not None:
                self.cpu_share.enter()
            try:
                return fn(*args)
            finally:
                if self.cpu_share is not None:
                    self.cpu_share.leave()

    # ---------------------------------------------------------------- on the compute thread
    def take_turn(self) -> None:
        """One turn of this model on the compute thread: form a batch from what is waiting and
        run it. Every enqueue submits one turn; a turn that finds nothing waiting (an earlier
        turn took its items) returns at once, and one that leaves items waiting submits another,
        behind whatever else the compute thread has queued meanwhile (other models' turns)."""
        if not self._pending:
            return
        if self.batch_timeout > 0:
            while not self._arrived.empty():
                self._arrived.get_nowait()  # arrivals already in _pending
            deadline = time.perf_counter() + self.batch_timeout
            while len(self._pending) < self.max_batch_size:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    self._arrived.get(timeout=remaining)
                except queue.Empty:
                    break
        with self._lock:
            batch = self._take()
        if batch:
            self._execute(batch)
        if self._pending:
            compute.submit(self.take_turn)

    def _take(self) -> list[tuple[_Job, int]]:
        """Remove and return the next batch. Requests take turns: the batch is the length group
        that contains the anchor, the oldest waiting item of the request served least recently (a
        request not served yet counts from when it was queued), chosen among up to
        LOOKAHEAD_BATCHES batches' worth of items of the anchor's type taken in turn from the
        waiting requests. A small request queued behind a large one rides in the next forward
        pass, and no request waits for ever."""
        while self._pending and self._pending[0][0].error is not None:
            self._pending.popleft()  # a failed request's leftover items
        if not self._pending:
            return []
        everything = self._all_in_one()
        if everything is not None:
            return everything
        window = self.max_batch_size * LOOKAHEAD_BATCHES
        waiting: dict[int, tuple[_Job, list[int]]] = {}
        for position, (job, _) in enumerate(self._pending):
            if job.error is None:
                waiting.setdefault(id(job), (job, []))[1].append(position)
        turns = sorted(waiting.values(), key=lambda entry: (entry[0].served, entry[1][0]))
        anchor_job, anchor_positions = turns[0]
        kind = type(anchor_job.items[self._pending[anchor_positions[0]][1]])
        queues = [[p for p in positions[:window] if type(job.items[self._pending[p][1]]) is kind] for job, positions in turns]
        positions: list[int] = []
        for depth in range(window):  # round robin over the requests, oldest turn first
            row = [queue[depth] for queue in queues if depth < len(queue)]
            if not row:
                break
            positions.extend(row[: window - len(positions)])
            if len(positions) >= window:
                break
        lengths = [self._pending[p][0].lengths[self._pending[p][1]] for p in positions]
        chosen = next(b for b in plan_batches(lengths, self.max_batch_size, self.max_batch_tokens) if 0 in b)
        taken = {positions[i] for i in chosen}
        batch = [self._pending[p] for p in sorted(taken)]
        self._pending = deque(
            entry for p, entry in enumerate(self._pending) if p not in taken and entry[0].error is None
        )
        return batch

    def _all_in_one(self) -> Optional[list[tuple[_Job, int]]]:
        """Every waiting item, in queue order, when they all fit in one batch (at most
        max_batch_size items of one type, none of a failed request, max_batch_tokens padded
        tokens): the batch the turn-taking choice below makes then, found without its cost (the
        usual case below full load). Taken from the queue; None when they do not all fit."""
        pending = self._pending
        if len(pending) > self.max_batch_size:
            return None
        kind = type(pending[0][0].items[pending[0][1]])
        longest = 1
        for job, index in pending:
            if job.error is not None or type(job.items[index]) is not kind:
                return None
            longest = max(longest, job.lengths[index])
        if longest * len(pending) > self.max_batch_tokens:
            return None
        batch = list(pending)
        pending.clear()
        return batch

    def _execute(self, batch: list[tuple[_Job, int]]) -> None:
        started = time.perf_counter()
        for job, _ in batch:
            if job.started is None:
                job.started = started
        try:
            rows = self.call(self.model.forward, [job.items[index] for job, index in batch])
        except Exception:
            log.exception("forward pass of %d items failed on model %s", len(batch), self.model.name)
            failure = InternalError(
                f"inference failed on model {self.model.name!r} for a batch holding this request; retry it"
            )
            for job in {id(job): job for job, _ in batch}.values():
                job.error = failure
                job.done.set()
            return
        elapsed = time.perf_counter() - started
        self.stats.batches += 1
        self.stats.busy_seconds += elapsed
        self.stats.items += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        if self.observer is not None:
            self.observer.batch(self.model.name, len(batch), sum(job.lengths[index] for job, index in batch), elapsed)
            self.observer.queued(self.model.name, len(self._pending))
        finished = []
        for row, (job, index) in enumerate(batch):
            job.out[index] = rows[row]
            job.remaining -= 1
            if job.remaining == 0:
                finished.append(job)
        now = time.perf_counter()
        for job in {id(job): job for job, _ in batch}.values():
            job.inference += elapsed
            job.served = now
        for job in finished:
            job.done.set()
