"""Helpers shared by the blueprints: JSON in, JSON out, and the app's service state."""

from __future__ import annotations

from typing import Any, Optional

import orjson
from flask import Response, current_app, g, request

from .budgets import NO_ITEMS, Budget
from .errors import use_error_style
from ..domain.errors import InvalidInput, LimitExceeded, UnsupportedMedia
from ..images import ImageLoader
from ..inference.jobs import request_priority
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

    raises InvalidInput (400) for a request with no body at all (no Content-Type, no bytes);
    UnsupportedMedia (415) unless `Content-Type: application/json`, or for a
    `Content-Encoding` other than identity (a compressed body is never inflated: no bomb);
    InvalidInput (400) when the body is not valid JSON; LimitExceeded (413) from :func:`check_shape`
    and from the route's output budget (:func:`route_budget`).
    """
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedMedia(
            f"Content-Encoding {encoding[:40]!r} is not supported; send the JSON body uncompressed", param=None
        )
    if not request.mimetype and not request.content_length and "wsgi.input_terminated" not in request.environ:
        raise InvalidInput("the request has no body; send a JSON object (Content-Type: application/json)", param=None)
    if request.mimetype != "application/json":
        shown = request.mimetype or "none"
        raise UnsupportedMedia(
            f"Content-Type must be application/json (got {shown})", param=None
        )
    try:
        body = orjson.loads(request.get_data(cache=False))
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"malformed JSON at character {exc.pos}", param=None) from None
    request_priority.set(_priority(body))
    operation = route_operation()
    if operation is not None and operation.pick_error_style is not None:
        picked = operation.pick_error_style(request, body)
        if picked is not None:
            use_error_style(picked)  # a shared path: errors from here on speak the request's dialect
    served = current_app.extensions.get(STATE_KEY)
    if served is not None:  # (an app without the service's state, in a test, has no budgets)
        check_shape(body, served.budgets)
        output = route_budget().output
        if output is not None:
            output.check(body, served.engines, served.settings)
    return body


def _priority(body: Any) -> int:
    """The request's queue priority: its `priority` field (vLLM's: lower is served first, default
    0), never more urgent than its API key's (`API_KEYS` entries `key;priority=N`). A value that is
    not an integer is left to the route's schema, which refuses it."""
    floor = g.get("priority_floor")
    asked = body.get("priority") if isinstance(body, dict) else None
    if isinstance(asked, bool) or not isinstance(asked, (int, float)) or (isinstance(asked, float) and not asked.is_integer()):
        return floor or 0
    return int(asked) if floor is None else max(floor, int(asked))


def route_operation() -> Any:
    """The matched route's routing.Operation, or None (no route, or a route without one)."""
    endpoint = request.endpoint
    view = current_app.view_functions.get(endpoint) if endpoint is not None else None
    return getattr(view, "operation", None)


def route_budget() -> Budget:
    """The budget the matched route declares (routing.Operation.budget); NO_ITEMS for a route
    without an operation (the Swagger UI's assets) or no route."""
    return getattr(route_operation(), "budget", None) or NO_ITEMS


def check_shape(body: Any, limits: RequestBudgets) -> None:
    """Cheap before expensive: the parsed body's size, counted on orjson's result before any
    schema builds objects from it, so a body that could never be served costs one walk, not a
    validation. raises LimitExceeded (413) naming the field and the setting:

    - a list of texts, documents or other objects longer than MAX_CLIENT_BATCH_SIZE;
    - a list of token ids longer than MAX_INPUT_CHARS (an id counts like a character);
    - more values in the whole body (list items and object members, token ids included) than
      MAX_REQUEST_CHARS.

    The walk stops at the first budget passed; a list of token ids is measured, not walked."""
    values, stack = 0, [(body, "")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, list):
            count = len(node)
            if count and isinstance(node[0], int) and not isinstance(node[0], bool):
                if count > limits.max_input_chars:
                    raise LimitExceeded(
                        f"{where or 'body'} has {count} token ids; at most {limits.max_input_chars} per input "
                        "(MAX_INPUT_CHARS: a token id counts like a character)", param=_field(where),
                    )
            elif count > limits.max_client_batch_size:
                raise LimitExceeded(
                    f"{where or 'body'} has {count} items; at most {limits.max_client_batch_size} per request "
                    "(MAX_CLIENT_BATCH_SIZE)", param=_field(where),
                )
            else:
                stack.extend((item, f"{where}[{index}]") for index, item in enumerate(node) if isinstance(item, (list, dict)))
        elif isinstance(node, dict):
            count = len(node)
            stack.extend((item, f"{where}.{key}" if where else str(key))
                         for key, item in node.items() if isinstance(item, (list, dict)))
        else:
            continue
        values += count
        if values > limits.max_request_chars:
            raise LimitExceeded(
                f"the request body holds more than {limits.max_request_chars} values (list items and object "
                "members, token ids included); at most MAX_REQUEST_CHARS per request", param=_field(where),
            )


def _field(where: str) -> Optional[str]:
    """The top-level field of a path such as `documents[3].text`."""
    return where.split("[", 1)[0].split(".", 1)[0] or None


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


def raw_json_response(body: bytes, status: int = 200) -> Response:
    """A JSON body already serialised (a dialect that builds a large answer piece by piece)."""
    return Response(body, status=status, mimetype="application/json")
