"""The service's errors: plain exceptions, raised by every layer and knowing nothing of HTTP.

Each names what went wrong (`kind`: its class name in snake case, `invalid_input`,
`limit_exceeded`, ...), the request field at fault (`param`, or None) and, where retrying helps,
after how long (`retry_after`, seconds). The HTTP edge (`http/errors.py`) maps each class to a
status code and body in one table; a dialect never decides a status itself.
"""

from __future__ import annotations

import re
from typing import Any, Optional


class ServiceError(Exception):
    """Base of every error a client may see: `message` (said to the client as is), `param` (the
    request field at fault), `retry_after` (seconds after which the same request may succeed)."""

    #: What went wrong, in snake case: the subclass's name (`LimitExceeded`: "limit_exceeded").
    kind = "service_error"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.kind = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()

    def __init__(self, message: str, param: Optional[str] = None, retry_after: Optional[int] = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after = retry_after


class InvalidInput(ServiceError):
    """The request breaks a rule of its schema or of the model (bad field, unknown option)."""


class NotAllowed(ServiceError):
    """An image URL or local path that the configuration does not allow."""


class NotFound(ServiceError):
    """Something the request names does not exist."""


class ModelNotFound(NotFound):
    """Unknown `model`; the message lists the served ones."""


class LimitExceeded(ServiceError):
    """A configured budget (request size, inputs, characters, pixels, queue) would be exceeded;
    the message names the setting and its value."""


class UnsupportedMedia(ServiceError):
    """A body or image in a format the service does not read."""


class Unprocessable(ServiceError):
    """Well-formed input that the model cannot process (an undecodable image, too long for a
    model that cannot truncate, ...)."""


class Unavailable(ServiceError):
    """Not now: the models are loading, the queue or the concurrency limit is full, or the
    process is draining. `retry_after` says when to try again."""


class Overloaded(Unavailable):
    """Not now because of load: the model's queue (MAX_QUEUE_SIZE) or the worker's concurrency
    limit (MAX_CONCURRENT_REQUESTS) is full. TEI's routes answer it as TEI does (429, `Overloaded`)."""


class InternalError(ServiceError):
    """A failure of the service itself; the message never carries library text or paths."""
