"""Dynamic batching: one :class:`Batcher` per engine, owning that model's queue.

Request threads prepare their items (tokenise, decode images) and call `run(items)`, which
enqueues them, submits the batcher's turn to the process's compute thread (compute.py: the one
thread that runs torch's work, for every model) and waits. Work is taken as it comes: an idle
model takes the first request at once; work that arrives during a forward pass forms the next
batch; with `BATCH_TIMEOUT_MS` > 0 it may wait that long to fill a batch (holding the compute
thread: other models wait too).

Each batch is chosen in two steps (CONCURRENCY_ANALYSIS.md, "The batcher's policy"):

1. Which request goes next: a request that has gone `MAX_PRIORITY_WAIT_MS` without a forward pass
   (the longest-waiting first); else the lowest `priority` value (vLLM's field: lower is served
   first, default 0), and within a priority the request served least recently (a request not
   served yet counts from when it was queued). So requests take turns: a small request queued
   behind a large one rides in the next forward pass, and none waits for ever.
2. What rides with it: that request's longest waiting item is the anchor;
   the batch grows around it with the waiting items of the same or more urgent priority nearest
   in length to it, from the whole queue (the anchor's own request first on equal lengths), while
   it holds at most `MAX_BATCH_SIZE` items, costs at most `TARGET_BATCH_TOKENS` tokens (padded
   tokens, items x longest, for a padded model; real tokens for an unpadded one) and, padded,
   pads to at most `MAX_PADDING` x its real tokens. Mismatched lengths are never forced together.

One forward pass runs at a time under the model's inference lock. A request larger than a batch
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
from typing import Any, Optional, Sequence

import numpy as np

from . import compute
from ..observability import tracing
from ..observability.request_stats import current_stats
from .batch_plan import BatchBounds, BatcherStats, grow_batch
from .jobs import Job as _Job, request_priority
from ..domain.errors import InternalError, LimitExceeded, Overloaded
from ..models.interfaces import Model

log = logging.getLogger("embedding_service.inference.batching")

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
        self.limits = limits
        #: Whether the model's passes cost their real tokens (models/unpadded.py) or items x longest.
        self.unpadded = bool(getattr(model, "unpadded", False))
        self.max_priority_wait = limits.max_priority_wait_ms / 1000.0
        self.cpu_share = cpu_share
        self.observer = observer
        self.stats = BatcherStats()
        #: Requests with items waiting, in arrival order, and their items' count.
        self._jobs: list[_Job] = []
        self._depth = 0
        self._lock = threading.Lock()  # guards _jobs and _depth
        #: Each compute lane's turn (see take_turn).
        self._turns = (self.take_turn, self.take_bulk_turn)
        #: With BATCH_TIMEOUT_MS, one token per enqueue ends `take_turn`'s wait for a fuller batch.
        self._arrived: "queue.SimpleQueue[None]" = queue.SimpleQueue()

    @property
    def queued(self) -> int:
        """Items waiting for a forward pass now."""
        return self._depth

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

    def run(self, items: Sequence[Any], lengths: Optional[Sequence[int]] = None, output: Optional[str] = None) -> Any:
        """Embed or score prepared items: (len(items), dimension) float32, input order kept.
        `lengths`: each item's length (tokens, or image patches) where the caller measured them
        already (they batch the items and go to the metrics); measured here otherwise.
        `output`: another of the model's batched outputs instead of `forward`, the name of a model
        method that takes a list of items and returns one result per item (`lexical_weights`,
        `token_vectors`, `token_states`); the result is then a list, one per item. Only requests
        asking for the same output share a forward pass.

        Whether the items fit the queue is checked here, once, as they are queued: raises
        LimitExceeded (413) for more items than MAX_QUEUE_SIZE (they could never be queued);
        Overloaded (503, Retry-After; 429 on TEI routes) when they do not fit in the queue now; InternalError (500)
        when the forward pass of a batch holding these items failed.
        """
        if not items:
            return [] if output else np.zeros((0, self.model.dimension), dtype=np.float32)
        lengths = lengths if lengths is not None else [len(item) for item in items]
        priority = request_priority.get()
        bulk = self.limits.bulk_lane and (priority > 0 or sum(lengths) > self.limits.target_batch_tokens)
        out = [None] * len(items) if output else np.empty((len(items), self.model.dimension), dtype=np.float32)
        job = _Job(items, lengths, out, len(items), time.perf_counter(), priority=priority, lane=int(bulk), output=output)
        with self._lock:
            self.check_fits(len(items))
            if self.max_queue_size and self._depth + len(items) > self.max_queue_size:
                self.stats.rejected += 1
                raise Overloaded(
                    f"model {self.model.name!r} is busy: {self._depth} items queued (MAX_QUEUE_SIZE "
                    f"{self.max_queue_size}); retry shortly",
                    retry_after=1,
                )
            self._jobs.append(job)
            self._depth += len(items)
            depth = self._depth
        if self.batch_timeout > 0:
            self._arrived.put(None)
        compute.submit(self._turns[job.lane], job.lane)
        if self.observer is not None:
            self.observer.queued(self.model.name, depth)
        job.done.wait()
        stats = current_stats.get()
        if stats is not None:
            stats.queue += (job.started or job.enqueued) - job.enqueued
            stats.inference += job.inference
        if self.observer is not None:
            self.observer.waited(self.model.name, (job.started or job.enqueued) - job.enqueued)
        if tracing.TRACER is not None:
            tracing.record_batches(self.model.name, job.enqueued, job.started, job.passes or [])
        if job.error is not None:
            raise job.error
        return job.out

    # ---------------------------------------------------------------- on the compute thread
    def take_bulk_turn(self) -> None:
        """:meth:`take_turn` on the bulk lane."""
        self.take_turn(1)

    def take_turn(self, lane: int = 0) -> None:
        """One turn of this model on compute lane `lane` (compute.py): form a batch from the
        requests waiting for that lane and run it. Every enqueue submits one turn to its lane; a
        turn that finds nothing waiting (an earlier turn took its items) returns at once, and one
        that leaves items waiting submits another, behind whatever else the lane has queued
        meanwhile (other models' turns). The interactive lane also takes bulk requests that have
        gone MAX_PRIORITY_WAIT_MS without a pass."""
        if not self._depth:
            return
        if self.batch_timeout > 0:
            while not self._arrived.empty():
                self._arrived.get_nowait()  # arrivals already queued
            deadline = time.perf_counter() + self.batch_timeout
            while self._depth < self.max_batch_size:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    self._arrived.get(timeout=remaining)
                except queue.Empty:
                    break
        with self._lock:
            try:
                batch = self._take(lane)
            except Exception:  # a fault in choosing the batch must not leave requests waiting for ever
                log.exception("choosing a batch failed on model %s; failing the requests queued for it", self.model.name)
                self._fail_all(InternalError(f"batching failed on model {self.model.name!r}; retry the request"))
                return
        if batch:
            self._execute(batch, lane)
        with self._lock:
            more = any(self._eligible(job, lane, time.perf_counter()) for job in self._jobs)
        if more:
            compute.submit(self._turns[lane], lane)

    def _eligible(self, job: _Job, lane: int, now: float) -> bool:
        """Whether `lane` may serve `job`: its own lane's requests, and on the interactive lane
        also bulk requests that have gone max_priority_wait without a pass."""
        return job.lane == lane or (lane == 0 and now - job.served > self.max_priority_wait)

    def _take(self, lane: int = 0) -> list[tuple[_Job, int]]:
        """Remove and return the next batch for `lane` (the module docstring's two steps): the
        anchor request, then the items that ride with its longest waiting item. Requests that
        failed meanwhile leave the queue here."""
        for job in [job for job in self._jobs if job.error is not None]:
            self._drop(job)
        now = time.perf_counter()
        jobs = [job for job in self._jobs if self._eligible(job, lane, now)]
        if not jobs:
            return []
        anchor_job, overdue = self._next_request(jobs, now)
        if overdue:
            self.stats.overdue_batches += 1
        anchor = anchor_job.waiting[-1]
        kind = type(anchor_job.items[anchor])
        size = anchor_job.lengths[anchor]
        # Candidates: up to a batch of each eligible request's items nearest the anchor's length.
        entries: list[tuple[_Job, int]] = [(anchor_job, anchor)]
        for job in [anchor_job] + sorted((j for j in jobs if j is not anchor_job), key=self._turn):
            if (job.priority > anchor_job.priority and not overdue) or job.output != anchor_job.output:
                continue
            entries.extend((job, i) for i in job.nearest(size, self.max_batch_size)
                           if not (job is anchor_job and i == anchor) and type(job.items[i]) is kind)
        lengths = [job.lengths[i] for job, i in entries]
        chosen = grow_batch(0, range(len(entries)), lengths, self.limits, self.unpadded)
        batch = [entries[c] for c in chosen]
        taken: dict[int, set[int]] = {}
        for job, index in batch:
            taken.setdefault(id(job), set()).add(index)
        for job in {id(job): job for job, _ in batch}.values():
            self._depth -= job.take(taken[id(job)])
            if not job.waiting:
                self._jobs.remove(job)
        return batch

    @staticmethod
    def _turn(job: _Job) -> tuple[int, float, float]:
        return (job.priority, job.served, job.enqueued)

    def _next_request(self, jobs: list[_Job], now: float) -> tuple[_Job, bool]:
        """(the request of `jobs` to serve next, whether it is overdue): the one waiting longest
        past max_priority_wait since its last forward pass, else the first by (priority, last
        served)."""
        overdue = [job for job in jobs if now - job.served > self.max_priority_wait]
        if overdue:
            return min(overdue, key=lambda job: job.served), True
        return min(jobs, key=self._turn), False

    def _fail_all(self, error: InternalError) -> None:
        """Every queued request fails with `error` and leaves the queue (caller holds the lock)."""
        for job in list(self._jobs):
            job.fail(error)
        self._jobs.clear()
        self._depth = 0

    def _drop(self, job: _Job) -> None:
        """A failed request's waiting items leave the queue."""
        self._depth -= len(job.waiting)
        job.waiting = []
        self._jobs.remove(job)

    def _pass(self, lane: int, items: list, output: Optional[str] = None) -> Any:
        """One forward pass (`forward`, or the model's method named `output`) on the calling
        compute lane, with torch's threads sized by the CPU share. Not under the model's lock: the
        two lanes may run passes of one model at once (a forward pass keeps no state between
        calls)."""
        if self.cpu_share is not None:
            self.cpu_share.enter(lane)
        try:
            return getattr(self.model, output)(items) if output else self.model.forward(items)
        finally:
            if self.cpu_share is not None:
                self.cpu_share.leave(lane)

    def _execute(self, batch: list[tuple[_Job, int]], lane: int = 0) -> None:
        started = time.perf_counter()
        for job, _ in batch:
            if job.started is None:
                job.started = started
        try:
            rows = self._pass(lane, [job.items[index] for job, index in batch], batch[0][0].output)
        except Exception:
            log.exception("forward pass of %d items failed on model %s", len(batch), self.model.name)
            failure = InternalError(
                f"inference failed on model {self.model.name!r} for a batch holding this request; retry it"
            )
            for job in {id(job): job for job, _ in batch}.values():
                job.fail(failure)
            return
        elapsed = time.perf_counter() - started
        real, padded = self.stats.record([job.lengths[index] for job, index in batch], self.unpadded, elapsed)
        if self.observer is not None:
            self.observer.batch(self.model.name, len(batch), real, padded, elapsed)
            self.observer.queued(self.model.name, self._depth)
        finished = [job for row, (job, index) in enumerate(batch) if job.deliver(index, rows[row])]
        now = time.perf_counter()
        for job in {id(job): job for job, _ in batch}.values():
            job.inference += elapsed
            job.served = now
            if tracing.TRACER is not None:
                job.passes = (job.passes or []) + [(self.stats.batches, len(batch), real, padded, started, elapsed)]
        for job in finished:
            job.done.set()
