"""Operational routes: `GET /health` (liveness), `GET /ready`, `GET /`, `GET /metrics` and
`GET /info` (TEI-style). None of them touches a model."""

from __future__ import annotations

import os
from dataclasses import asdict

from flask import Response, current_app

from .... import __version__
from ....domain.errors import NotFound
from .responses import Health, Index, Info, Ready
from ....operations.state import Phase
from ...json_io import engines, json_response, state
from ...routing import ApiBlueprint

bp = ApiBlueprint("ops", __name__, tag="operations")


@bp.operation("GET", "/health", summary="Liveness (never touches a model)", response=Health, public=True)
def health():
    """Liveness, never touching a model: `{"status": "ok", "model", "device", "cuda_available",
    "pid", "slot", "phase", "models"}`."""
    st = state()
    return json_response(
        {
            "status": "ok",
            "model": st.model_names[0] if st.model_names else None,
            "device": st.worker.device,
            "cuda_available": st.worker.cuda_available,
            "pid": os.getpid(),
            "slot": st.worker.slot,
            "phase": st.phase.value,
            "models": st.model_names,
        }
    )


@bp.operation(
    "GET", "/ready", summary="Readiness: 200 once models are loaded, 503 while loading or draining",
    response=Ready, errors=(503,), error_bodies={503: Ready}, public=True,
)
def ready():
    """200 once every model is loaded and warmed; 503 while loading, draining or failed."""
    st = state()
    if st.phase is not Phase.READY:
        body = {"status": st.phase.value, "pid": os.getpid(), "models": st.model_names}
        return json_response(body, status=503, headers={"Retry-After": "5"})
    return json_response({"status": "ready", "pid": os.getpid(), "models": st.model_names})


@bp.operation("GET", "/", summary="Service name, version, models, routes", response=Index, public=True)
def index():
    """Service name, version, models and routes."""
    routes = sorted(
        f"{method} {rule.rule}"
        for rule in current_app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    )
    return json_response(
        {"service": "embedding_service", "version": __version__, "models": state().model_names, "routes": routes}
    )


@bp.operation(
    "GET", "/metrics", summary="Prometheus metrics, summed over workers", media_type="text/plain", errors=(404,),
    public=True,
)
def metrics():
    """Prometheus text exposition, summed over all Gunicorn workers."""
    if not state().settings.metrics:
        raise NotFound("metrics are off (METRICS=false)")
    from ....observability.metrics import render

    body, content_type = render()
    return Response(body, status=200, content_type=content_type)


@bp.operation(
    "GET", "/info", summary="Models, dimensions, limits, batching counters (TEI-style)", response=Info, errors=(503,)
)
def info():
    """TEI-style description of the default model, every model, and the batching limits."""
    st = state()
    reg = engines()
    default = reg.first.info()
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
            "pid": os.getpid(),
            "models": [e.info() for e in reg.engines],
            "batching": {
                e.name: {**asdict(e.batcher.stats), "padding_ratio": e.batcher.stats.padding_ratio,
                         "queued": e.batcher.queued}
                for e in reg.engines
            },
        }
    )
