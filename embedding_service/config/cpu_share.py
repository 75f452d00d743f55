"""Sharing the CPU cores among the forward passes of several CPU workers.

Gunicorn's master creates one slot per worker in shared memory before forking (no torch there).
A CPU worker marks its slot busy for the length of each forward pass, and runs that pass with
`cores // (CPU workers busy now or within the last RECENT seconds)` torch threads: alone, a pass
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


class CpuShare:
    """Per-slot "busy until" times in shared memory (monotonic clock, comparable across
    processes; +inf while a pass runs); `enter(slot)` returns the threads to use now."""

    def __init__(self, slots: int, cores: int):
        self.cores = max(1, cores)
        self.until = multiprocessing.RawArray("d", max(1, slots))  # inherited by forked workers

    def enter(self, slot: int) -> int:
        """Mark `slot` busy; returns cores // (slots busy now or recently), at least 1."""
        self.until[slot] = math.inf
        now = time.monotonic()
        busy = sum(1 for until in self.until if until > now - RECENT)
        return max(1, self.cores // max(1, busy))

    def leave(self, slot: int) -> None:
        self.until[slot] = time.monotonic()

    def thread_counts(self) -> list[int]:
        """Every thread count `enter` can return (one per number of busy slots), ascending."""
        return sorted({max(1, self.cores // busy) for busy in range(1, len(self.until) + 1)})

    def clear(self, slot: int) -> None:
        self.until[slot] = 0.0
