"""Helpers shared by the blueprints: JSON in, JSON out, and the per-app service state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import orjson
from flask import Response, current_app, request

from ..errors import BadRequest, Unavailable, UnsupportedMediaType
from ..images import ImageLoader
from ..registry import Registry
from ..settings import Settings

JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


@dataclass
class ServiceState:
    """What the views need: settings, the models (None while loading), this worker's slot, and
    its phase: `loading`, `ready`, `draining` (after SIGTERM) or `failed`."""

    settings: Settings
    registry: Optional[Registry]
    images: ImageLoader
    worker: dict = field(default_factory=dict)
    cuda_available: bool = False
    model_names: list = field(default_factory=list)
    device: str = "cpu"
    phase: str = "loading"


def state() -> ServiceState:
    return current_app.extensions["embedding_service"]


def registry() -> Registry:
    """The loaded models; raises Unavailable (503, Retry-After) while they are still loading."""
    loaded = state().registry
    if loaded is None:
        raise Unavailable("the models are still loading; retry shortly (GET /ready says when)", headers={"Retry-After": "5"})
    return loaded


def images() -> ImageLoader:
    return state().images


def json_body() -> Any:
    """The request body parsed as JSON.

    raises UnsupportedMediaType (415) unless `Content-Type: application/json`; BadRequest (400)
    when the body is not valid JSON.
    """
    if request.mimetype != "application/json":
        shown = request.mimetype or "none"
        raise UnsupportedMediaType(
            f"Content-Type must be application/json (got {shown})", param=None
        )
    try:
        return orjson.loads(request.get_data(cache=False))
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON at character {exc.pos}", param=None) from None


def json_response(payload: Any, status: int = 200, headers: Optional[dict] = None) -> Response:
    """Serialise with orjson (numpy arrays included, no per-float Python loop)."""
    try:
        body = orjson.dumps(payload, option=JSON_OPTIONS)
    except TypeError:  # lone surrogates echoed from a client (e.g. returned documents)
        import json

        body = json.dumps(payload, default=lambda o: o.tolist()).encode()
    resp = Response(body, status=status, mimetype="application/json")
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp
