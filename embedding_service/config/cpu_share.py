"""Sharing the CPU cores among the forward passes of several CPU workers.

Gunicorn's master creates one slot per worker in shared memory before forking (no torch there).
A CPU worker marks its lane busy for the length of each forward pass, and runs that pass with
`cores // (lanes busy now or within the last RECENT seconds, over every worker)` torch threads
(each worker has two compute lanes, interactive and bulk: compute.py): alone, a pass
uses every core (one request gets the latency of the whole machine); under load, each worker's
pass gets its share, and no OpenMP thread waits at a barrier for a core another pass holds. The
"recently busy" window keeps a worker from starting a whole-machine pass in the gap between two
passes of a busy neighbour. See CONCURRENCY_ANALYSIS.md.
"""

from __future__ import annotations

import math
import multiprocessing
import time

#: Seconds after its last pass during which a worker still counts as busy.
RECENT = 0.1


#: Compute lanes per worker (inference/compute.py: the interactive lane and the bulk lane), each
#: with its own "busy until" entry, so a worker running both counts twice.
LANES = 2


class CpuShare:
    """Per-lane "busy until" times in shared memory (monotonic clock, comparable across
    processes; +inf while a pass runs), LANES per slot; `enter(slot, lane)` returns the threads to
    use now."""

    def __init__(self, slots: int, cores: int):
        self.cores = max(1, cores)
        self.until = multiprocessing.RawArray("d", max(1, slots) * LANES)  # inherited by forked workers

    def enter(self, slot: int, lane: int = 0) -> int:
        """Mark `slot`'s `lane` busy; returns cores // (lanes busy now or recently), at least 1.
        A bulk lane (1) counts the bulk lanes only: an interactive pass is short and preempts it
        (compute.BULK_NICE), so a trickle of queries does not halve a bulk pass's threads."""
        self.until[slot * LANES + lane] = math.inf
        now = time.monotonic()
        counted = self.until[lane::LANES] if lane else self.until
        busy = sum(1 for until in counted if until > now - RECENT)
        return max(1, self.cores // max(1, busy))

    def leave(self, slot: int, lane: int = 0) -> None:
        self.until[slot * LANES + lane] = time.monotonic()

    def thread_counts(self) -> list[int]:
        """Every thread count `enter` can return (one per number of busy lanes), ascending."""
        return sorted({max(1, self.cores // busy) for busy in range(1, len(self.until) + 1)})

    def clear(self, slot: int) -> None:
        for lane in range(LANES):
            self.until[slot * LANES + lane] = 0.0
