"""The app factory: `create_app(settings=None)` builds the Flask app around the models."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable, Optional

from flask import Flask, g, request

from .api import BLUEPRINTS
from .api.common import ServiceState
from .context import RequestStats, current_stats
from .errors import Unavailable, register_error_handlers, request_id
from .images import ImageLoader
from .logs import configure_logging, log_access
from .models.spec import model_specs
from .registry import Registry
from .security import install_security
from .settings import Settings

log = logging.getLogger("embedding_service.app")


def local_device(settings: Settings) -> str:
    """The device of a single-process server: DEVICES' first entry, DEVICE, or `auto` (cuda if
    torch sees a GPU, else cpu)."""
    if settings.devices:
        return settings.devices[0]
    if settings.device != "auto":
        return settings.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def create_app(
    settings: Optional[Settings] = None,
    registry: Optional[Registry] = None,
    worker: Optional[dict] = None,
    load_async: bool = False,
    device: Optional[str] = None,
    on_loaded: Optional[Callable[[Registry], None]] = None,
    on_load_error: Optional[Callable[[BaseException], None]] = None,
) -> Flask:
    """Build the app. Settings default to the environment (+ `.env`).

    Models: a loaded `registry` if given; else loaded onto `device` (default `local_device`) here,
    or, with `load_async`, on a background thread while the app already answers `/health` (200)
    and `/ready` (503). `on_loaded(registry)` runs once loading succeeded, `on_load_error(exc)` if
    it failed. raises SettingsError for bad configuration (synchronous loading).
    """
    settings = settings or Settings.from_env()
    configure_logging(settings)
    import torch

    app = Flask("embedding_service")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    app.url_map.strict_slashes = False
    info = {"pid": os.getpid(), "slot": None, "started": int(time.time())}
    info.update(worker or {})
    state = ServiceState(
        settings=settings,
        registry=None,
        images=ImageLoader(settings),
        worker=info,
        cuda_available=torch.cuda.is_available(),
        model_names=[spec.name for spec in model_specs(settings)],
        device=device or local_device(settings),
    )
    app.extensions["embedding_service"] = state
    if settings.metrics:
        from .metrics import ImageObserver

        state.images.observer = ImageObserver()
    register_error_handlers(app)
    install_request_hooks(app, settings)
    install_security(app, settings)
    install_concurrency_limit(app, settings)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)

    def attach(loaded: Registry) -> None:
        loaded.settings = settings  # request limits (batch size, characters) follow this app's settings
        if settings.metrics:
            from .metrics import LOAD_SECONDS, READY_WORKERS, BatchObserver

            observer = BatchObserver()
            for model in loaded.models:
                LOAD_SECONDS.labels(model.name).set(model.load_seconds)
                loaded.batchers[model.name].observer = observer
            READY_WORKERS.inc()
        if on_loaded is not None:
            on_loaded(loaded)
        state.registry = loaded
        state.phase = "ready"

    if registry is not None:
        attach(registry)
    elif load_async:
        def load() -> None:
            try:
                attach(Registry.load(settings, state.device))
                log.info("worker %s ready", os.getpid())
            except BaseException as exc:  # noqa: BLE001 - reported, then the caller decides
                state.phase = "failed"
                log.exception("loading the models failed")
                if on_load_error is not None:
                    on_load_error(exc)

        threading.Thread(target=load, name="model-loader", daemon=True).start()
    else:
        attach(Registry.load(settings, state.device))
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
