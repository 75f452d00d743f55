"""A request in a batcher's queue (batching.py), and the priority a request carries there."""

from __future__ import annotations

from bisect import bisect_left
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from .compute import Signal
from ..domain.errors import ServiceError

#: The priority of the request being served on this thread (vLLM's `priority`: lower is served
#: first; default 0), set at the HTTP edge from the request's field and its API key.
request_priority: ContextVar[int] = ContextVar("request_priority", default=0)


@dataclass(eq=False)  # compared by identity: the queue removes a request by `is`
class Job:
    """One request's items in a batcher's queue: `out` (items, dimension) float32 (or, for another
    `output`, a list with one result per item) filled as passes finish, `done` set when the last one has (or the request failed: `error`)."""

    items: Sequence[Any]
    #: Each item's length (tokens, or image patches), measured once at enqueue.
    lengths: Sequence[int]
    out: Any
    remaining: int
    enqueued: float
    done: Signal = field(default_factory=Signal)
    error: Optional[ServiceError] = None
    started: Optional[float] = None
    inference: float = 0.0
    #: When a forward pass last carried items of this request (its queueing time until then):
    #: requests take turns by it.
    served: float = 0.0
    priority: int = 0
    #: The compute lane its passes run on: 1 (bulk) for a later priority than 0 or more tokens
    #: than one batch takes, else 0 (interactive).
    lane: int = 0
    #: The model method whose results `out` holds (a list then), or None for `forward`'s rows.
    output: Optional[str] = None
    #: With tracing on: each pass that carried its items, (batch id, items, tokens, padded tokens,
    #: start, seconds) (observability/tracing.py).
    passes: Optional[list] = None
    #: Indices of the items not yet taken, ascending by length.
    waiting: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.served = self.served or self.enqueued
        self.waiting = sorted(range(len(self.items)), key=lambda i: self.lengths[i])

    def nearest(self, size: int, count: int) -> list[int]:
        """Up to `count` waiting items on each side of length `size` (the nearest in length)."""
        where = bisect_left(self.waiting, size, key=lambda i: self.lengths[i])
        return self.waiting[max(0, where - count): where + count]

    def take(self, indices: set[int]) -> int:
        """Remove `indices` from the waiting items (a batch took them); returns how many."""
        self.waiting = [i for i in self.waiting if i not in indices]
        return len(indices)

    def deliver(self, index: int, result: Any) -> bool:
        """Store item `index`'s result; returns whether it was the request's last."""
        self.out[index] = result
        self.remaining -= 1
        return self.remaining == 0

    def fail(self, error: ServiceError) -> None:
        """End the request with `error` (its waiter raises it)."""
        self.error = error
        self.done.set()
