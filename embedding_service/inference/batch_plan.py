"""What a batch may hold: the bounds of one forward pass (:class:`BatchBounds`), how waiting items
split into batches by length (:func:`plan_batches`), and the batcher's counters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


#: How many batches' worth of waiting items a batch is chosen among (to group similar lengths).
LOOKAHEAD_BATCHES = 4


def plan_batches(lengths: Sequence[int], max_items: int, max_tokens: int) -> list[list[int]]:
    """Split item indices into batches: sorted by length (longest first), each batch at most
    `max_items` items and `max_items x longest` ≤ `max_tokens` padded tokens (a single item
    longer than `max_tokens` still forms its own batch)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order:
        size = max(lengths[index], 1)
        if current and (len(current) >= max_items or max(longest, size) * (len(current) + 1) > max_tokens):
            batches.append(current)
            current, longest = [], 0
        current.append(index)
        longest = max(longest, size)
    if current:
        batches.append(current)
    return batches


@dataclass(frozen=True)
class BatchBounds:
    """`max_batch_size` items and `max_batch_tokens` padded tokens per forward pass;
    `batch_timeout_ms` milliseconds the batcher may wait to fill a batch (0: never waits);
    `max_queue_size` queued items before a request is refused with 503 (0: no limit)."""

    max_batch_size: int
    max_batch_tokens: int
    batch_timeout_ms: float = 0.0
    max_queue_size: int = 0

    @classmethod
    def from_settings(cls, settings) -> "BatchBounds":
        return cls(settings.max_batch_size, settings.max_batch_tokens, settings.batch_timeout_ms, settings.max_queue_size)


@dataclass
class BatcherStats:
    """Counters since start: forward passes, items, the largest batch, requests refused, and the
    seconds spent in forward passes (busy_seconds / wall time = the model's utilisation)."""

    batches: int = 0
    items: int = 0
    largest_batch: int = 0
    rejected: int = 0
    busy_seconds: float = 0.0
