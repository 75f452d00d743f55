"""What one request did, gathered as it happens: for the timing headers, the access log line
and the metrics. A context variable, so the model and batching code need no Flask."""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass
from typing import Optional

from . import tracing


@dataclass
class RequestStats:
    """Seconds spent tokenising (or decoding images), waiting in a queue and in forward passes,
    summed over the request's model calls; the model used, inputs and tokens."""

    tokenization: float = 0.0
    queue: float = 0.0
    inference: float = 0.0
    model: Optional[str] = None
    items: int = 0
    tokens: int = 0


#: The current request's stats; the app sets a fresh one per request.
current_stats: contextvars.ContextVar[Optional[RequestStats]] = contextvars.ContextVar("request_stats", default=None)


class timed:
    """`with timed(part):` adds the seconds (wall clock) the block takes to the current request's
    `part` ("tokenization", "queue" or "inference"); nothing outside a request. The one way the
    service times a request's stages (a class, not a generator: it runs on every request). With
    tracing on (tracing.py) the block is also a child span named `part`."""

    __slots__ = ("part", "started", "span")

    def __init__(self, part: str):
        self.part = part
        self.span = None

    def __enter__(self) -> None:
        if tracing.TRACER is not None:
            self.span = tracing.span(self.part)
            self.span.__enter__()
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        if self.span is not None:
            self.span.__exit__(*exc)
        stats = current_stats.get()
        if stats is not None:
            setattr(stats, self.part, getattr(stats, self.part) + time.perf_counter() - self.started)
