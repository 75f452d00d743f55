"""The app factory: `create_app(settings, state=...)` builds the Flask app around a ServiceState.

The boot path (worker.py) decides the runtime, builds the state and loads the engines; the app
only serves what it is given.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Optional

from flask import Flask, g, request

from .api import BLUEPRINTS
from .api.common import STATE_KEY
from .context import RequestStats, current_stats
from .errors import Unavailable, register_error_handlers, request_id
from .logs import configure_logging, log_access
from .registry import Registry
from .security import install_security
from .settings import Settings
from .state import ServiceState

log = logging.getLogger("embedding_service.app")


def create_app(
    settings: Optional[Settings] = None, *, state: Optional[ServiceState] = None, engines: Optional[Registry] = None
) -> Flask:
    """The Flask app serving `state` (in whatever phase it is: the boot path moves it on).

    Without `state` (development server, tests): a single-process state serving `engines`, or,
    without those, the models of `settings` loaded here first (worker.serve_locally). Settings
    default to the state's, else the environment (+ `.env`). raises SettingsError for bad
    configuration.
    """
    settings = settings or (state.settings if state is not None else Settings.from_env())
    configure_logging(settings)
    if state is None:
        from .worker import serve_locally

        state = serve_locally(settings, engines)
    app = Flask("embedding_service")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    app.url_map.strict_slashes = False
    app.extensions[STATE_KEY] = state
    register_error_handlers(app)
    install_request_hooks(app, settings)
    install_security(app, settings)
    install_concurrency_limit(app, settings)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    return app


def install_request_hooks(app: Flask, settings: Settings) -> None:
    """Request id (`X-Request-ID` taken or made, echoed), per-request stats for TEI's timing
    headers (`X-Total-Time`, `X-Tokenization-Time`, `X-Queue-Time`, `X-Inference-Time`, ms), the
    access log line and the request metrics."""
    observe = None
    if settings.metrics:
        from .metrics import observe_request as observe

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        g.stats = RequestStats()
        current_stats.set(g.stats)
        request_id()

    @app.after_request
    def _finish(response):
        stats = getattr(g, "stats", None) or RequestStats()
        elapsed = time.perf_counter() - getattr(g, "started", time.perf_counter())
        response.headers["X-Request-ID"] = request_id()
        response.headers["X-Total-Time"] = f"{elapsed * 1000:.3f}"
        response.headers["X-Tokenization-Time"] = f"{stats.tokenization * 1000:.3f}"
        response.headers["X-Queue-Time"] = f"{stats.queue * 1000:.3f}"
        response.headers["X-Inference-Time"] = f"{stats.inference * 1000:.3f}"
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        if observe is not None and route != "/metrics":
            observe(route, request.method, response.status_code, elapsed)
        if route not in ("/health", "/ready", "/metrics"):
            log_access(
                method=request.method, path=request.path, status=response.status_code, seconds=elapsed,
                request_id=request_id(), remote=request.remote_addr, model=stats.model, items=stats.items,
                tokens=stats.tokens,
            )
        return response


def install_concurrency_limit(app: Flask, settings: Settings) -> None:
    """MAX_CONCURRENT_REQUESTS inference requests in flight per worker; beyond, 503 + Retry-After."""
    if not settings.max_concurrent_requests:
        return
    in_flight = threading.BoundedSemaphore(settings.max_concurrent_requests)

    @app.before_request
    def _acquire() -> None:
        if request.method == "POST":
            if not in_flight.acquire(blocking=False):
                raise Unavailable(
                    f"{settings.max_concurrent_requests} requests are in flight (MAX_CONCURRENT_REQUESTS); retry shortly",
                    headers={"Retry-After": "1"},
                )
            g.holds_slot = True

    @app.teardown_request
    def _release(_exc) -> None:
        if g.pop("holds_slot", False):
            in_flight.release()
