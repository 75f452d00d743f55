"""What a batch may hold: the bounds of one forward pass (:class:`BatchBounds`), its cost in
tokens (:func:`batch_cost`), how a batch grows around an anchor item (:func:`grow_batch`), and
the batcher's counters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


def batch_cost(lengths: Sequence[int], unpadded: bool) -> int:
    """Tokens a forward pass over items of `lengths` computes: their sum when the model runs
    unpadded, else items x longest (every input padded to the longest)."""
    if not lengths:
        return 0
    return sum(lengths) if unpadded else len(lengths) * max(lengths)


def grow_batch(anchor: int, candidates: Sequence[int], lengths: Sequence[int], bounds: "BatchBounds",
               unpadded: bool) -> list[int]:
    """The batch around `anchor`: items of `candidates` (in order of preference: the anchor's own
    request first, then by turn) taken nearest in length to the anchor's first, while the batch
    holds at most `max_batch_size` items, costs at most `target_batch_tokens` (and
    `max_batch_tokens`) tokens as `batch_cost` counts them and, for a padded model, pads to at most
    `max_padding` x its real tokens. Returns the chosen indices, the anchor first."""
    size = max(lengths[anchor], 1)
    order = sorted((i for i in candidates if i != anchor), key=lambda i: abs(lengths[i] - size))
    chosen, longest, total = [anchor], size, size
    limit = min(bounds.target_batch_tokens, bounds.max_batch_tokens)
    for index in order:
        if len(chosen) >= bounds.max_batch_size:
            break
        length = max(lengths[index], 1)
        new_longest, new_total = max(longest, length), total + length
        cost = new_total if unpadded else new_longest * (len(chosen) + 1)
        if cost > limit:
            if unpadded or length >= longest:
                continue  # a shorter item may still fit
            break
        if not unpadded and new_longest * (len(chosen) + 1) > bounds.max_padding * new_total:
            continue
        chosen.append(index)
        longest, total = new_longest, new_total
    return chosen


@dataclass(frozen=True)
class BatchBounds:
    """`max_batch_size` items and `max_batch_tokens` tokens per forward pass at most (padded
    tokens, items x longest, for a padded model; real tokens for an unpadded one);
    `target_batch_tokens`, where a batch stops growing (larger passes ran slower per token on the
    CPU: CONCURRENCY_ANALYSIS.md); `max_padding`, the padded / real tokens a padded model's batch
    may reach; `batch_timeout_ms` milliseconds the batcher may wait to fill a batch (0: never
    waits); `max_queue_size` queued items before a request is refused with 503 (0: no limit);
    `max_priority_wait_ms`, how long a waiting request may go without a forward pass before it is
    served next whatever its priority."""

    max_batch_size: int
    max_batch_tokens: int
    batch_timeout_ms: float = 0.0
    max_queue_size: int = 0
    target_batch_tokens: int = 2048
    max_padding: float = 1.25
    max_priority_wait_ms: float = 2000.0
    #: Whether bulk requests run on the bulk compute lane (compute.py), beside interactive ones.
    bulk_lane: bool = True

    @classmethod
    def from_settings(cls, settings) -> "BatchBounds":
        return cls(settings.max_batch_size, settings.max_batch_tokens, settings.batch_timeout_ms, settings.max_queue_size,
                   settings.target_batch_tokens, settings.max_padding, settings.max_priority_wait_ms, settings.bulk_lane)


@dataclass
class BatcherStats:
    """Counters since start: forward passes, items, the largest batch, requests refused, and the
    seconds spent in forward passes (busy_seconds / wall time = the model's utilisation)."""

    batches: int = 0
    items: int = 0
    #: Tokens of the items run, and tokens computed (padded: items x longest per batch; equal to
    #: the real tokens for an unpadded model); their ratio is the padding paid.
    real_tokens: int = 0
    padded_tokens: int = 0
    largest_batch: int = 0
    rejected: int = 0
    busy_seconds: float = 0.0
    #: Forward passes of a waiting request that had gone `max_priority_wait_ms` without one.
    overdue_batches: int = 0

    def record(self, lengths: Sequence[int], unpadded: bool, seconds: float) -> tuple[int, int]:
        """Count one forward pass of items of `lengths` that took `seconds`; returns its (real,
        padded) tokens (`batch_cost`)."""
        real, padded = sum(lengths), batch_cost(lengths, unpadded)
        self.batches += 1
        self.busy_seconds += seconds
        self.items += len(lengths)
        self.largest_batch = max(self.largest_batch, len(lengths))
        self.real_tokens += real
        self.padded_tokens += padded
        return real, padded

    @property
    def padding_ratio(self) -> float:
        """Padded / real tokens so far (1.0: no padding paid)."""
        return round(self.padded_tokens / self.real_tokens, 4) if self.real_tokens else 1.0
