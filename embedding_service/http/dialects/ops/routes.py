"""Operational routes: `GET /health` (liveness), `GET /ready`, `GET /`, `GET /metrics` and
`GET /info` (TEI-style). None of them touches a model."""

from __future__ import annotations

import os
from dataclasses import asdict

from flask import Response, current_app, request

from .... import __version__
from ....domain.errors import NotFound
from ....inference.engine import Capability
from ....operations.model_names import resolve
from .responses import Health, Index, Info, Ready
from ....operations.state import Phase
from ...json_io import engines, json_response, state
from ...routing import ApiBlueprint
from ...errors import ErrorStyle

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


#: TEI's pooling names for the service's poolings (TEI knows cls, mean, splade and last_token).
TEI_POOLING = {"cls": "cls", "mean": "mean", "lasttoken": "last_token"}


def _labels(id2label: dict) -> dict:
    """TEI's ClassifierModel: `id2label` (string ids) and `label2id`."""
    return {"id2label": {str(k): str(v) for k, v in id2label.items()}, "label2id": {str(v): int(k) for k, v in id2label.items()}}


def tei_model_type(engine) -> dict:
    """TEI's `model_type` for `engine`: a classifier (a token classifier too: TEI has no type of
    its own for one) or a reranker with its labels, else an
    embedding model with its pooling in TEI's names (`splade` for a sparse model; a pooling TEI
    has no name for, such as `max`, is shown as `mean`, and `models` holds the exact one)."""
    model = engine.model
    if engine.can(Capability.CLASSIFY) or engine.can(Capability.TOKEN_CLASSIFY):
        return {"classifier": _labels(dict(enumerate(model.labels)))}
    if engine.can(Capability.SCORE_PAIRS):
        labels = getattr(getattr(getattr(model, "model", None), "config", None), "id2label", None) or {0: "LABEL_0"}
        return {"reranker": _labels(dict(labels))}
    if engine.can(Capability.SPARSE) and not engine.can(Capability.EMBED_TEXT):
        return {"embedding": {"pooling": "splade"}}
    pooling = engine.info().get("pooling") or "mean"
    return {"embedding": {"pooling": TEI_POOLING.get(pooling, "mean")}}


@bp.operation(
    "GET", "/info", summary="TEI info (the default model, or `?model=`), every model, limits, batching counters",
    response=Info, errors=(404, 503), error_style=ErrorStyle.TEI,
)
def info():
    """TEI's `Info` for the default model (the first configured) or the one `?model=` names
    (raises ModelNotFound, 404), with every model and the batching counters beside it."""
    st = state()
    reg = engines()
    name = request.args.get("model")
    engine = reg.find(resolve(reg, name)) if name else reg.first
    default = engine.info()
    s = st.settings
    return json_response(
        {
            "model_id": default["id"],
            "model_sha": None,
            "model_dtype": default["precision"],
            "model_type": tei_model_type(engine),
            "served_model_name": default["id"],
            "max_concurrent_requests": s.max_concurrent_requests or s.threads,
            "max_input_length": default["max_input_length"],
            "max_batch_tokens": s.max_batch_tokens,
            "max_batch_requests": s.max_batch_size,
            "auto_truncate": True,
            "tokenization_workers": s.threads,
            "sha": None,
            "docker_label": None,
            "kind": default["kind"],
            "max_batch_size": s.max_batch_size,
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
