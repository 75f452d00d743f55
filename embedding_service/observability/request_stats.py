"""What one request did, gathered as it happens: for the timing headers, the access log line
and the metrics. A context variable, so the model and batching code need no Flask."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Optional


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
