"""API keys, rate limits and CORS (the 401 and 429 rows of the error table in errors.py).

- API keys: `Authorization: Bearer <key>` checked against every configured key with
  `hmac.compare_digest` (constant time); 401 with `WWW-Authenticate: Bearer`. Paths in
  AUTH_PUBLIC_PATHS (and /docs assets) and CORS preflights need no key.
- Failed authentications: every 401 counts against the client address; past AUTH_FAILURE_LIMIT per
  RATE_LIMIT_WINDOW seconds that address gets 429 with `Retry-After` before any key is compared
  (on whenever API keys are set, independent of RATE_LIMIT_REQUESTS).
- Rate limit: ONE budget per API key (per client address without keys) shared by every route but
  the public paths and CORS preflights: RATE_LIMIT_REQUESTS requests (not inputs) per
  RATE_LIMIT_WINDOW seconds, fixed window; 429 with `Retry-After` and `X-RateLimit-*`.
- Both counters live in RATE_LIMIT_STORAGE_URI (`limits`, the library under Flask-Limiter;
  `redis://` makes them hold across Gunicorn workers and replicas). When the storage is
  unreachable, RATE_LIMIT_ON_STORAGE_ERROR decides: `open` serves requests unlimited, `closed`
  answers 503 with `Retry-After`. An outage is logged once per worker when it starts and once when
  it ends, never per request; each failed storage call counts in
  `embedding_rate_limit_storage_errors_total`; during an outage the storage is tried again at most
  once per PROBE_SECONDS.
- CORS: flask-cors for the origins in CORS_ORIGINS only; off when empty.
- Behind a reverse proxy: for a request whose socket peer is in FORWARDED_ALLOW_IPS, the client address
  is the last `X-Forwarded-For` entry (the one that proxy appended) and the scheme its
  `X-Forwarded-Proto` (werkzeug's ProxyFix, one hop); from any other peer both headers are ignored.
  Every per-address count above, and the access log, then see the client rather than the proxy.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import time
from typing import Callable, Optional, TypeVar

from flask import Flask, g, request

from ..domain.errors import Unavailable
from .errors import RateLimited, Unauthorized
from .rate_limit_storage import StorageDown, make_limiter
from ..config.settings import Settings
from ..config.values import api_key_entry

log = logging.getLogger("embedding_service.http.security")
CHALLENGE = 'Bearer realm="embedding_service"'
#: Prefix of every rate-limit key in the storage.
KEY_PREFIX = "embedding_service"
T = TypeVar("T")


def install_security(app: Flask, settings: Settings) -> None:
    """Register auth (with its failure limit), then the rate limit, then CORS, in that order (auth
    decides the limit key)."""
    entries = [api_key_entry(key.get_secret_value()) for key in settings.api_keys]
    keys = [(key.encode(), floor) for key, floor in entries]
    public = set(settings.auth_public_paths)
    failure_limit = settings.auth_failure_limit if keys else 0
    limiter, guard = make_limiter(settings) if (failure_limit or settings.rate_limit_requests) else (None, None)

    def is_public() -> bool:
        """AUTH_PUBLIC_PATHS opens the GET (and HEAD) of its paths only: `GET /` is public, while
        `POST /` (TEI's inference route on the same path) needs a key."""
        if request.method not in ("GET", "HEAD"):
            return False
        path = request.path.rstrip("/") or "/"
        return path in public or ("/docs" in public and path.startswith("/docs/"))

    def guarded(fn: Callable[..., T], *args) -> Optional[T]:
        """fn(*args) against the storage; None when it is down and the policy is `open`."""
        try:
            return guard.call(fn, *args)
        except StorageDown as down:
            if settings.rate_limit_on_storage_error == "closed":
                raise Unavailable(
                    "rate limits cannot be checked: the rate-limit storage is unreachable "
                    "(RATE_LIMIT_ON_STORAGE_ERROR=closed); retry shortly",
                    retry_after=max(1, math.ceil(down.retry_after)),
                ) from None
            return None

    failures = None
    if failure_limit:
        from limits import RateLimitItemPerSecond

        failures = RateLimitItemPerSecond(failure_limit, settings.rate_limit_window)

    def locked_out_until(address: str) -> Optional[float]:
        """When this address may try again, if its failed authentications are used up."""
        if limiter.test(failures, KEY_PREFIX, "auth-failures", address):
            return None
        return limiter.get_window_stats(failures, KEY_PREFIX, "auth-failures", address).reset_time

    def refuse(message: str, challenge: str) -> Unauthorized:
        if failures is not None:
            try:  # best effort: a storage failure here must not turn the 401 into something else
                guard.call(limiter.hit, failures, KEY_PREFIX, "auth-failures", f"ip:{request.remote_addr}")
            except StorageDown:
                pass
        return Unauthorized(message, headers={"WWW-Authenticate": challenge})

    @app.before_request
    def _authenticate() -> None:
        if not keys or request.method == "OPTIONS" or is_public():
            return
        if failures is not None:
            until = guarded(locked_out_until, f"ip:{request.remote_addr}")
            if until is not None:
                raise RateLimited(
                    f"too many failed authentications from this address ({failures}, AUTH_FAILURE_LIMIT); "
                    "retry after Retry-After seconds",
                    headers={"Retry-After": str(_seconds_until(until))},
                )
        header = request.headers.get("Authorization", "")
        if not header:
            raise refuse("missing API key: send the header Authorization: Bearer <key>", CHALLENGE)
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise refuse(
                "malformed Authorization header; expected: Bearer <key>", f'{CHALLENGE}, error="invalid_request"'
            )
        candidate = token.encode()
        matched, floor = False, 0
        for key, key_floor in keys:  # compare with every key, so timing says nothing about which one matched
            hit = hmac.compare_digest(key, candidate)
            matched |= hit
            floor = key_floor if hit else floor
        if not matched:
            raise refuse("invalid API key", f'{CHALLENGE}, error="invalid_token"')
        g.priority_floor = floor  # the key's queue priority (json_io: a request's priority is never below it)
        g.client_key = "key:" + hashlib.sha256(candidate).hexdigest()[:16]

    if settings.rate_limit_requests:
        from limits import RateLimitItemPerSecond

        budget = RateLimitItemPerSecond(settings.rate_limit_requests, settings.rate_limit_window)

        def spend(client: str) -> tuple[bool, float, int]:
            allowed = limiter.hit(budget, KEY_PREFIX, "requests", client)
            reset_time, remaining = limiter.get_window_stats(budget, KEY_PREFIX, "requests", client)
            return allowed, reset_time, remaining

        @app.before_request
        def _rate_limit() -> None:
            if request.method == "OPTIONS" or is_public():
                return
            spent = guarded(spend, g.get("client_key") or f"ip:{request.remote_addr}")
            if spent is None:
                return  # storage down, RATE_LIMIT_ON_STORAGE_ERROR=open: served unlimited
            allowed, reset_time, remaining = spent
            g.rate_limit = (reset_time, remaining)
            if not allowed:
                raise RateLimited(
                    f"rate limit exceeded ({budget} per {'API key' if keys else 'client address'}, "
                    "RATE_LIMIT_REQUESTS); retry after Retry-After seconds",
                    headers={"Retry-After": str(_seconds_until(reset_time))},
                )

        @app.after_request
        def _rate_limit_headers(response):
            spent = g.get("rate_limit")
            if spent is not None:
                reset_time, remaining = spent
                response.headers["X-RateLimit-Limit"] = str(budget.amount)
                response.headers["X-RateLimit-Remaining"] = str(max(0, remaining))
                response.headers["X-RateLimit-Reset"] = str(math.ceil(reset_time))
            return response

    if settings.cors_origins:
        from flask_cors import CORS

        CORS(
            app,
            origins=list(settings.cors_origins),
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=[
                "X-Request-ID", "X-Total-Time", "X-Tokenization-Time", "X-Queue-Time", "X-Inference-Time",
                "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
            ],
            max_age=600,
        )


def trust_forwarded(app: Flask, settings: Settings) -> None:
    """Wrap the app's WSGI callable in :class:`TrustedProxyFix` for FORWARDED_ALLOW_IPS (nothing when unset)."""
    if settings.forwarded_allow_ips:
        app.wsgi_app = TrustedProxyFix(app.wsgi_app, settings.forwarded_allow_ips)  # type: ignore[method-assign]


class TrustedProxyFix:
    """WSGI middleware: werkzeug's `ProxyFix(x_for=1, x_proto=1)` for requests whose `REMOTE_ADDR`
    (the socket peer) is one of `trusted` (IP addresses or networks as Gunicorn's
    `forwarded_allow_ips` takes them, or `*` for any peer); other requests pass unchanged, so a
    client talking to the service directly cannot choose its address with `X-Forwarded-For`.
    An IPv4-mapped IPv6 peer (`::ffff:a.b.c.d`) counts as its IPv4 address."""

    def __init__(self, app, trusted: tuple[str, ...]):
        from werkzeug.middleware.proxy_fix import ProxyFix

        self.app = app
        self.fixed = ProxyFix(app, x_for=1, x_proto=1)
        self.any = "*" in trusted
        self.networks = tuple(ipaddress.ip_network(item) for item in trusted if item != "*")

    def trusts(self, peer: Optional[str]) -> bool:
        if self.any:
            return True
        try:
            address = ipaddress.ip_address(peer or "")
        except ValueError:  # no peer address (a Unix socket) or not an IP: not a listed proxy
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def __call__(self, environ, start_response):
        handler = self.fixed if self.trusts(environ.get("REMOTE_ADDR")) else self.app
        return handler(environ, start_response)


def _seconds_until(epoch: float) -> int:
    """Whole seconds until `epoch` (wall clock), at least 1: the value of Retry-After."""
    return max(1, math.ceil(epoch - time.time()))
