"""Helpers shared by the blueprints: JSON in, JSON out, and the app's service state."""

from __future__ import annotations

from typing import Any, Optional

import orjson
from flask import Response, current_app, request

from ..domain.errors import InvalidInput, UnsupportedMedia
from ..images import ImageLoader
from ..inference.registry import Registry
from ..operations.state import RequestBudgets, ServiceState

JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
#: Where the app factory keeps the ServiceState in `app.extensions`.
STATE_KEY = "embedding_service"


def state() -> ServiceState:
    return current_app.extensions[STATE_KEY]


def engines() -> Registry:
    """The loaded engines; raises Unavailable (503, Retry-After) while they are still loading."""
    return state().require_engines()


def budgets() -> RequestBudgets:
    """This app's per-request limits (MAX_CLIENT_BATCH_SIZE, MAX_INPUT_CHARS)."""
    return state().budgets


def images() -> ImageLoader:
    return state().images


def json_body() -> Any:
    """The request body parsed as JSON.

    raises UnsupportedMedia (415) unless `Content-Type: application/json`; InvalidInput (400)
    when the body is not valid JSON.
    """
    if request.mimetype != "application/json":
        shown = request.mimetype or "none"
        raise UnsupportedMedia(
            f"Content-Type must be application/json (got {shown})", param=None
        )
    try:
        return orjson.loads(request.get_data(cache=False))
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"malformed JSON at character {exc.pos}", param=None) from None


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
