"""The app factory: `create_app(settings=None)` builds the Flask app around loaded models."""

from __future__ import annotations

import logging
import os
import time
from typing import Optional

from flask import Flask

from .api import BLUEPRINTS
from .api.common import ServiceState
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
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    return app
