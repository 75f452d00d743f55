"""The app factory: `create_app(state)` builds the Flask app around a ServiceState.

The process layer (process/boot.py) decides the runtime, builds the state and loads the engines;
the app only serves what it is given and never loads a model.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Optional
from flask import Flask, g, request

from . import shared_paths
from .dialects import BLUEPRINTS
from .budgets import body_too_large, check_body_size
from .json_io import STATE_KEY, route_budget
from ..inference.vector_cache import cache_mode
from ..observability.request_stats import RequestStats, current_stats
from ..domain.errors import LimitExceeded, Overloaded
from .error_handlers import register_error_handlers
from .errors import request_id
from ..observability import tracing
from ..observability.logs import log_access
from .security import install_security, trust_forwarded
from ..config.settings import Settings
from ..operations.state import ServiceState

log = logging.getLogger("embedding_service.http.app")


def create_app(state: ServiceState) -> Flask:
    """The Flask app serving `state` (in whatever phase it is: the process layer moves it on),
    configured by `state.settings`. A single-process app with its models loaded is
    `process.boot.local_app`."""
    settings = state.settings
    app = Flask("embedding_service")
    # Flask asks of every hook and view, on every request, whether it is `async def`: ask once.
    app.ensure_sync = functools.cache(app.ensure_sync)  # type: ignore[method-assign]
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    app.url_map.strict_slashes = False
    # No redirect for a path with doubled slashes: Werkzeug would build its Location from the
    # client's Host header (an open redirect); such a path is a 404 like any unknown one.
    app.url_map.merge_slashes = False
    app.extensions[STATE_KEY] = state
    register_error_handlers(app)
    install_request_hooks(app, settings)
    install_security(app, settings)
    install_concurrency_limit(app, settings)
    install_body_budget(app, settings)
    for blueprint in (*BLUEPRINTS, shared_paths.bp):
        app.register_blueprint(blueprint)
    trust_forwarded(app, settings)  # the client's address behind a trusted reverse proxy (FORWARDED_ALLOW_IPS)
    tracing.instrument(app)  # a server span per request when OTEL_* asks for traces
    return app


def install_request_hooks(app: Flask, settings: Settings) -> None:
    """Request id (`X-Request-ID` taken when safe, else made; echoed), the vector cache's use
    (`Cache-Control`: :func:`cache_mode_of`), per-request stats for TEI's timing
    headers (`X-Total-Time`, `X-Tokenization-Time`, `X-Queue-Time`, `X-Inference-Time`, ms), the
    access log line and the request metrics."""
    observe = None
    cache_on = settings.vector_cache != "off"  # without a cache, no header to read
    if settings.metrics:
        from ..observability.metrics import observe_request as observe

    # The hooks run on every request: `g` and `request` are resolved once each (every use of
    # Flask's context proxies costs a lookup), and the request id is computed once.
    @app.before_request
    def _start() -> None:
        scope = g._get_current_object()
        scope.started = time.perf_counter()
        scope.stats = stats = RequestStats()
        current_stats.set(stats)
        if cache_on:
            cache_mode.set(cache_mode_of(request.environ.get("HTTP_CACHE_CONTROL")))
        request_id()

    @app.after_request
    def _finish(response):
        scope, req = g._get_current_object(), request._get_current_object()
        stats = getattr(scope, "stats", None) or RequestStats()
        elapsed = time.perf_counter() - getattr(scope, "started", time.perf_counter())
        rid = request_id()
        headers = response.headers
        headers["X-Request-ID"] = rid  # replaces the one an error response may carry
        headers.extend((
            ("X-Total-Time", f"{elapsed * 1000:.3f}"),
            ("X-Tokenization-Time", f"{stats.tokenization * 1000:.3f}"),
            ("X-Queue-Time", f"{stats.queue * 1000:.3f}"),
            ("X-Inference-Time", f"{stats.inference * 1000:.3f}"),
        ))
        route = req.url_rule.rule if req.url_rule is not None else "unmatched"
        if observe is not None and route != "/metrics":
            observe(route, req.method, response.status_code, elapsed)
        if route not in ("/health", "/ready", "/metrics"):
            log_access(
                method=req.method, path=req.path, status=response.status_code, seconds=elapsed,
                request_id=rid, remote=req.remote_addr, model=stats.model, items=stats.items, tokens=stats.tokens,
                trace_id=tracing.trace_id() if tracing.TRACER is not None else None,
            )
        return response


def cache_mode_of(header: Optional[str]) -> str:
    """The vector cache's use for a request's `Cache-Control`: `no-store` bypasses it, `no-cache`
    computes afresh and stores the result, anything else uses it."""
    if not header:
        return "use"
    directives = {part.strip().lower() for part in header.split(",")}
    return "bypass" if "no-store" in directives else "refresh" if "no-cache" in directives else "use"


def install_concurrency_limit(app: Flask, settings: Settings) -> None:
    """MAX_CONCURRENT_REQUESTS inference requests in flight per worker; beyond, 503 + Retry-After."""
    if not settings.max_concurrent_requests:
        return
    in_flight = threading.BoundedSemaphore(settings.max_concurrent_requests)

    @app.before_request
    def _acquire() -> None:
        if request.method == "POST":
            if not in_flight.acquire(blocking=False):
                raise Overloaded(
                    f"{settings.max_concurrent_requests} requests are in flight (MAX_CONCURRENT_REQUESTS); retry shortly",
                    retry_after=1,
                )
            g.holds_slot = True

    @app.teardown_request
    def _release(_exc) -> None:
        if g.pop("holds_slot", False):
            in_flight.release()


def install_body_budget(app: Flask, settings: Settings) -> None:
    """Each route's body byte budget (budgets.body_limit), after the API key, rate and concurrency
    checks and before any of the body is read: a `Content-Length` over it is a 413 at once, and it
    becomes the request's `max_content_length` (Werkzeug's form parser and `get_data` stop there).

    A body sent without Content-Length (`Transfer-Encoding: chunked`) is read here up to the
    budget (cached for the view and the form parser), and one more byte is asked of the server's
    input: if there is one, the body was longer than allowed. (Werkzeug's LimitedStream would stop
    quietly at the limit, and the view would answer 400 for the cut JSON.)
    """

    @app.before_request
    def _check_body_budget() -> None:
        rule = request.url_rule
        if rule is None:
            return  # no route: the 404 or 405 follows
        route = f"{request.method} {rule.rule}"
        limit, how = check_body_size(
            route_budget(), app.config["MAX_CONTENT_LENGTH"], settings.max_request_chars, request.content_length, route
        )
        request.max_content_length = limit
        if request.content_length is not None or "wsgi.input_terminated" not in request.environ:
            return  # Content-Length was checked; without input_terminated the body is not read at all
        body = request.get_data(cache=True)
        if len(body) >= limit and request.environ["wsgi.input"].read(1):
            raise LimitExceeded(
                body_too_large(limit, how, app.config["MAX_CONTENT_LENGTH"], route), param=None,
            )
