"""The app factory: `create_app(settings=None)` builds the Flask app around loaded models."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Optional

from flask import Flask, g, request

from .api import BLUEPRINTS
from .api.common import ServiceState
from .batching import Timing, current_timing
from .errors import Unavailable
from .errors import register_error_handlers
from .images import ImageLoader
from .registry import Registry
from .settings import Settings


def local_device(settings: Settings) -> str:
    """The device of a single-process server: DEVICES' first entry, DEVICE, or `auto` (cuda if
    torch sees a GPU, else cpu)."""
    if settings.devices:
        return settings.devices[0]
    if settings.device != "auto":
        return settings.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("embedding_service").setLevel(settings.log_level)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def create_app(
    settings: Optional[Settings] = None,
    registry: Optional[Registry] = None,
    worker: Optional[dict] = None,
) -> Flask:
    """Build the app. Settings default to the environment (+ `.env`); models are loaded here onto
    `local_device(settings)` unless a loaded `registry` is given (Gunicorn's `post_fork` does)."""
    settings = settings or Settings.from_env()
    configure_logging(settings)
    if registry is None:
        registry = Registry.load(settings, local_device(settings))
    import torch

    app = Flask("embedding_service")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    app.json.sort_keys = False
    app.url_map.strict_slashes = False
    info = {"pid": os.getpid(), "slot": None, "started": int(time.time())}
    info.update(worker or {})
    app.extensions["embedding_service"] = ServiceState(
        settings=settings,
        registry=registry,
        images=ImageLoader(settings),
        worker=info,
        cuda_available=torch.cuda.is_available(),
    )
    register_error_handlers(app)
    install_request_hooks(app, settings)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    return app


def install_request_hooks(app: Flask, settings: Settings) -> None:
    """Per-request timing headers (TEI's `X-Total-Time`, `X-Tokenization-Time`, `X-Queue-Time`,
    `X-Inference-Time`, milliseconds) and the MAX_CONCURRENT_REQUESTS limit (503 + Retry-After)."""
    in_flight = threading.BoundedSemaphore(settings.max_concurrent_requests) if settings.max_concurrent_requests else None

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        g.timing = Timing()
        current_timing.set(g.timing)
        if in_flight is not None and request.method == "POST":
            if not in_flight.acquire(blocking=False):
                raise Unavailable(
                    f"{settings.max_concurrent_requests} requests are in flight (MAX_CONCURRENT_REQUESTS); retry shortly",
                    headers={"Retry-After": "1"},
                )
            g.holds_slot = True

    @app.after_request
    def _headers(response):
        timing = getattr(g, "timing", None)
        if timing is not None:
            response.headers["X-Total-Time"] = f"{(time.perf_counter() - g.started) * 1000:.3f}"
            response.headers["X-Tokenization-Time"] = f"{timing.tokenization * 1000:.3f}"
            response.headers["X-Queue-Time"] = f"{timing.queue * 1000:.3f}"
            response.headers["X-Inference-Time"] = f"{timing.inference * 1000:.3f}"
        return response

    @app.teardown_request
    def _release(_exc) -> None:
        if in_flight is not None and g.pop("holds_slot", False):
            in_flight.release()
