"""Batching: how prepared items reach a model's forward pass.

One :class:`Batcher` per loaded model. `run(items)` returns one row per item, in input order.
Items are grouped by length to cut padding and packed into batches of at most `MAX_BATCH_SIZE`
items and `MAX_BATCH_TOKENS` padded tokens (items x longest item); each batch runs under the
model's inference lock, one forward pass at a time.

This version runs a request's batches on the request's own thread (requests take turns at the
lock); cross-request dynamic batching with a queue and backpressure is the next step (issue 5)
and keeps this interface.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .models.base import Model


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


class Batcher:
    """Runs a model's forward passes; owns the batching limits for that model."""

    def __init__(self, model: Model, max_batch_size: int, max_batch_tokens: int):
        self.model = model
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens

    def run(self, items: Sequence[Any]) -> np.ndarray:
        """Embed prepared items: (len(items), dimension) float32, input order kept."""
        out = np.empty((len(items), self.model.dimension), dtype=np.float32)
        for batch in plan_batches([len(item) for item in items], self.max_batch_size, self.max_batch_tokens):
            with self.model.lock:
                rows = self.model.forward([items[i] for i in batch])
            out[batch] = rows
        return out
