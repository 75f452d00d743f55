"""The rate-limit storage (RATE_LIMIT_STORAGE_URI, through the `limits` library) and the guard
every call into it goes through, so that an unreachable storage costs one failed call per
PROBE_SECONDS, not one per request."""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Callable, Optional, TypeVar

from ..config.settings import Settings

log = logging.getLogger("embedding_service.http.security")
#: How long a worker waits before trying an unreachable storage again, seconds.
PROBE_SECONDS = 1.0
#: Connect and read timeouts for a Redis storage, seconds (a black-holed Redis must not hold requests).
REDIS_TIMEOUT = 1.0

T = TypeVar("T")


class StorageDown(Exception):
    """The rate-limit storage is unreachable; `retry_after` seconds until the next try."""

    def __init__(self, retry_after: float):
        super().__init__(retry_after)
        self.retry_after = retry_after


class StorageGuard:
    """Every call into the rate-limit storage goes through :meth:`call`.

    A failing call (limits' StorageError) starts an outage: one warning, and the error is counted
    (`on_error`, the metric). While the outage lasts, one thread at a time probes the storage, at
    most once per PROBE_SECONDS counted from when the last failed call *ended* (a frozen storage
    takes its whole timeout to fail); every other call raises :class:`StorageDown` at once without
    touching the storage. The first call that succeeds ends the outage with one "recovered" line.
    """

    def __init__(self, uri: str, on_error: Optional[Callable[[], None]] = None, probe_seconds: Optional[float] = None):
        self.uri = re.sub(r"//[^/@]*@", "//***@", uri)  # never log a password from redis://user:pass@host
        self.on_error = on_error
        self.probe_seconds = PROBE_SECONDS if probe_seconds is None else probe_seconds
        self._lock = threading.Lock()
        self._down_since: Optional[float] = None
        self._next_try = 0.0
        self._errors = 0
        self._probing = False  # a thread is probing the storage during an outage

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def call(self, fn: Callable[..., T], *args) -> T:
        from limits.errors import StorageError

        now = time.monotonic()
        probe = False
        if self._down_since is not None:
            with self._lock:
                if self._down_since is not None:
                    if self._probing or now < self._next_try:
                        raise StorageDown(max(self._next_try - now, 0.0) or self.probe_seconds)
                    self._probing = probe = True  # this thread probes; the others decide at once
        try:
            result = fn(*args)
        except StorageError as exc:
            ended = time.monotonic()
            with self._lock:
                started = self._down_since is None
                if started:
                    self._down_since, self._errors = now, 0
                self._errors += 1
                self._next_try = ended + self.probe_seconds
                self._probing = False
            if self.on_error is not None:
                self.on_error()
            if started:
                cause = exc.storage_error
                log.warning(
                    "rate-limit storage %s is unreachable (%s: %s); RATE_LIMIT_ON_STORAGE_ERROR decides until it is "
                    "back; retried at most every %.0fs", self.uri, type(cause).__name__, cause, self.probe_seconds,
                )
            raise StorageDown(self.probe_seconds) from None
        except BaseException:
            if probe:
                with self._lock:
                    self._probing = False
            raise
        if self._down_since is not None:
            with self._lock:
                since, errors, self._down_since, self._probing = self._down_since, self._errors, None, False
            if since is not None:
                log.warning(
                    "rate-limit storage %s recovered after %.1fs (%d failed calls)", self.uri, now - since, errors
                )
        return result


def make_limiter(settings: Settings):
    """The fixed-window limiter on RATE_LIMIT_STORAGE_URI and the guard its calls go through."""
    from limits.storage import storage_from_string
    from limits.strategies import FixedWindowRateLimiter

    uri = settings.rate_limit_storage_uri
    options: dict = {"wrap_exceptions": True}
    if uri.startswith(("redis://", "rediss://", "redis+unix://")):
        options.update(socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT)
    on_error = None
    if settings.metrics:
        from ..observability.metrics import RATE_LIMIT_STORAGE_ERRORS

        on_error = RATE_LIMIT_STORAGE_ERRORS.inc
    return FixedWindowRateLimiter(storage_from_string(uri, **options)), StorageGuard(uri, on_error)
