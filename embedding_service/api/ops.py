"""Operational routes: `GET /health` (liveness, seed 000), `GET /ready`, `GET /` (seed 001) and
`GET /info` (TEI). None of them touches a model."""

from __future__ import annotations

import os
from dataclasses import asdict

from flask import Blueprint, current_app

from .. import __version__
from .common import json_response, registry, state

bp = Blueprint("ops", __name__)


@bp.get("/health")
def health():
    """`{"status": "ok", "model", "device", "cuda_available", "pid", "slot", "models"}`."""
    st = state()
    reg = st.registry
    return json_response(
        {
            "status": "ok",
            "model": reg.default.name,
            "device": reg.device,
            "cuda_available": st.cuda_available,
            "pid": os.getpid(),
            "slot": st.worker.get("slot"),
            "models": reg.names(),
        }
    )


@bp.get("/ready")
def ready():
    """200 once every model is loaded and warmed (models load before the app serves)."""
    return json_response({"status": "ready", "models": registry().names()})


@bp.get("/")
def index():
    """Service name, version, models and routes."""
    routes = sorted(
        f"{method} {rule.rule}"
        for rule in current_app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    )
    return json_response(
        {"service": "embedding_service", "version": __version__, "models": registry().names(), "routes": routes}
    )


@bp.get("/info")
def info():
    """TEI-style description of the default model, every model, and the batching limits."""
    st = state()
    reg = st.registry
    default = reg.default.info()
    s = st.settings
    return json_response(
        {
            "model_id": default["id"],
            "model_dtype": default["dtype"],
            "model_type": default["kind"],
            "max_input_length": default["max_input_length"],
            "max_batch_size": s.max_batch_size,
            "max_batch_tokens": s.max_batch_tokens,
            "max_client_batch_size": s.max_client_batch_size,
            "batch_timeout_ms": s.batch_timeout_ms,
            "max_queue_size": s.max_queue_size,
            "version": __version__,
            "device": reg.device,
            "models": [m.info() for m in reg.models],
            "batching": {
                name: {**asdict(batcher.stats), "queued": batcher.queued} for name, batcher in reg.batchers.items()
            },
        }
    )
