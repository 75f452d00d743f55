"""The service's errors: plain exceptions, raised by every layer and knowing nothing of HTTP.

Each names what went wrong (`kind`), the request field at fault (`param`, or None) and, where
retrying helps, after how long (`retry_after`, seconds). The HTTP edge (`http/errors.py`) maps
each class to a status code and body in one table; a dialect never decides a status itself.
"""

from __future__ import annotations

from typing import Optional


class ServiceError(Exception):
    """Base of every error a client may see: `message` (said to the client as is), `param` (the
    request field at fault), `retry_after` (seconds after which the same request may succeed)."""

    kind = "internal_error"

    def __init__(self, message: str, param: Optional[str] = None, retry_after: Optional[int] = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after = retry_after


class InvalidInput(ServiceError):
    """The request breaks a rule of its schema or of the model (bad field, unknown option)."""

    kind = "invalid_input"


class NotAllowed(ServiceError):
    """An image URL or local path that the configuration does not allow."""

    kind = "not_allowed"


class NotFound(ServiceError):
    """Something the request names does not exist."""

    kind = "not_found"


class ModelNotFound(NotFound):
    """Unknown `model`; the message lists the served ones."""


class LimitExceeded(ServiceError):
    """A configured budget (request size, inputs, characters, pixels, queue) would be exceeded;
    the message names the setting and its value."""

    kind = "limit_exceeded"


class UnsupportedMedia(ServiceError):
    """A body or image in a format the service does not read."""

    kind = "unsupported_media"


class Unprocessable(ServiceError):
    """Well-formed input that the model cannot process (an undecodable image, too long for a
    model that cannot truncate, ...)."""

    kind = "unprocessable"


class Unavailable(ServiceError):
    """Not now: the models are loading, the queue or the concurrency limit is full, or the
    process is draining. `retry_after` says when to try again."""

    kind = "unavailable"


class InternalError(ServiceError):
    """A failure of the service itself; the message never carries library text or paths."""

    kind = "internal_error"
