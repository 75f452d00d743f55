"""The HTTP edge of the errors: the one table mapping every error to a status code, and each
dialect's rendering of it.

Every layer raises :mod:`embedding_service.domain.errors` classes (plain exceptions); the edge
adds its own (:class:`Unauthorized`, :class:`RateLimited`, :class:`MethodNotAllowed`, and
:class:`HttpStatus` for Werkzeug's other statuses). :data:`STATUS` is the only place that turns
a class into a status code and into each dialect's error type. A body has the shape of the
request's :class:`ErrorStyle` (the matched route's, or the dialect a shared path's request
belongs to): OpenAI's nested body, vLLM's (nested, vLLM's types), TEI's `{"error",
"error_type"}`, Cohere's `{"id", "message"}` or Ollama's `{"error": str}`. Bodies never carry a
stack trace, a server path or a library's exception text; unexpected exceptions become a 500
that names the request id. The handlers that turn Werkzeug's and unexpected exceptions into
these are in :mod:`.error_handlers`.
"""

from __future__ import annotations

import json
import re
import uuid
from enum import Enum
from typing import NamedTuple, Optional

import orjson
from flask import Response, current_app, g, request
from werkzeug.exceptions import MethodNotAllowed as WerkzeugMethodNotAllowed

from ..domain.errors import (
    InternalError,
    InvalidInput,
    LimitExceeded,
    NotAllowed,
    NotFound,
    Overloaded,
    ServiceError,
    Unavailable,
    UnsupportedMedia,
    Unprocessable,
)


class HttpError(ServiceError):
    """An error only the HTTP edge raises, with response `headers` of its own."""

    def __init__(self, message: str, param: Optional[str] = None, headers: Optional[dict] = None,
                 retry_after: Optional[int] = None):
        super().__init__(message, param, retry_after)
        self.headers = headers or {}


class Unauthorized(HttpError):
    """Missing or wrong API key (`WWW-Authenticate` says how to send one)."""


class RateLimited(HttpError):
    """Over RATE_LIMIT_REQUESTS, or too many failed API keys."""


class MethodNotAllowed(HttpError):
    """A known path with a method it does not take (`Allow` lists the ones it does)."""


class HttpStatus(HttpError):
    """A Werkzeug HTTP error with a status :data:`STATUS` has no row for, kept as is."""

    def __init__(self, message: str, status: int, headers: Optional[dict] = None):
        super().__init__(message, headers=headers)
        self.status = status


class Row(NamedTuple):
    """One row of :data:`STATUS`: the status code and each dialect's name for the error.

    - `status`: the HTTP status on every route, except where TEI answers otherwise (`tei_status`);
    - `type`: the nested body's `type` (OpenAI's style, the service's own routes);
    - `tei`: TEI's `error_type` (`Validation`, `Tokenizer`, `Empty`, `Overloaded`, `Backend`,
      `Unhealthy`: TEI's `ErrorType`);
    - `vllm`: vLLM's `type` (`BadRequestError`, `NotFoundError`, ... as vLLM names them);
    - `tei_status`: TEI's own status where it differs (429 for an overloaded queue, 424 for a
      failed forward pass), or None.
    """

    status: int
    type: str
    tei: str
    vllm: str
    tei_status: Optional[int] = None


#: The one error table: error class -> :class:`Row`. A subclass takes its nearest listed
#: ancestor's row (ModelNotFound is a NotFound: 404).
STATUS: dict[type, Row] = {
    InvalidInput: Row(400, "invalid_request_error", "Validation", "BadRequestError"),
    Unauthorized: Row(401, "authentication_error", "Validation", "Unauthorized"),
    NotAllowed: Row(403, "permission_error", "Validation", "Forbidden"),
    NotFound: Row(404, "not_found_error", "Validation", "NotFoundError"),
    MethodNotAllowed: Row(405, "method_not_allowed", "Validation", "Method Not Allowed"),
    LimitExceeded: Row(413, "payload_too_large", "Validation", "Request Entity Too Large"),
    UnsupportedMedia: Row(415, "unsupported_media_type", "Validation", "Unsupported Media Type"),
    Unprocessable: Row(422, "unprocessable_entity", "Validation", "UnprocessableEntityError"),
    RateLimited: Row(429, "rate_limit_error", "Overloaded", "Too Many Requests"),
    InternalError: Row(500, "internal_error", "Backend", "InternalServerError", tei_status=424),
    Unavailable: Row(503, "service_unavailable", "Unhealthy", "Service Unavailable"),
    Overloaded: Row(503, "service_unavailable", "Overloaded", "Service Unavailable", tei_status=429),
}


def row_of(err: ServiceError) -> Row:
    """The :data:`STATUS` row of `err` (InternalError's for an unlisted class); an
    :class:`HttpStatus` keeps its own status."""
    if isinstance(err, HttpStatus):
        if err.status >= 500:
            return Row(err.status, "internal_error", "Backend", "InternalServerError")
        return Row(err.status, "invalid_request_error", "Validation", "BadRequestError")
    for cls in type(err).__mro__:
        row = STATUS.get(cls)
        if row is not None:
            return row
    return STATUS[InternalError]


def status_of(err: ServiceError) -> tuple[int, str]:
    """(status code, nested body `type`) of `err`, from :data:`STATUS` (500 for an unlisted class)."""
    row = row_of(err)
    return row.status, row.type


def error_headers(err: ServiceError) -> dict:
    """`Retry-After` (whole seconds) from `err.retry_after`, plus an edge error's own headers."""
    headers = {"Retry-After": str(err.retry_after)} if err.retry_after is not None else {}
    headers.update(getattr(err, "headers", {}))
    return headers


class ErrorStyle(Enum):
    """The error body shape of a dialect (a route's `Operation.error_style`, or the dialect a
    shared path's request belongs to: :func:`use_error_style`)."""

    #: `{"error": {"message": str, "type": str, "param": str | null, "code": int}}` (OpenAI's, the service's own)
    NESTED = "nested"
    #: `{"error": str}`, the message alone, as Ollama answers
    FLAT = "flat"
    #: `{"error": str, "error_type": str}`, as TEI answers (TEI's statuses: 424 and 429 where TEI uses them)
    TEI = "tei"
    #: `{"id": str, "message": str}`, as Cohere's API answers; `id` is the request id
    COHERE = "cohere"
    #: `{"error": {"message", "type", "param", "code"}}` with vLLM's types (`BadRequestError`, ...)
    VLLM = "vllm"


def use_error_style(style: ErrorStyle) -> None:
    """Answer this request's errors in `style` from now on (json_io.json_body calls it with the
    style a shared path's `pick_error_style` picks from the parsed body)."""
    g.error_style = style


def current_error_style() -> ErrorStyle:
    """The error style of the current request: the one picked from its body on a shared path
    (:func:`use_error_style`), else the one the route's `pick_error_style` picks from the request
    before its body is read, else the one the route declares (`view.operation.error_style`).

    A known path with the wrong method (405) takes the style of the routes at that path, found by
    matching it for the methods it allows; an unknown path (404) is NESTED."""
    chosen = g.get("error_style")
    if chosen is not None:
        return chosen
    endpoint = request.endpoint
    if endpoint is None:
        endpoint = _endpoint_at_path()
    view = current_app.view_functions.get(endpoint) if endpoint is not None else None
    operation = getattr(view, "operation", None)
    if operation is None:
        return ErrorStyle.NESTED
    picked = operation.pick_error_style(request, None) if operation.pick_error_style is not None else None
    return picked or operation.error_style


def _endpoint_at_path() -> Optional[str]:
    """The endpoint serving the request's path for some other method, or None."""
    adapter = current_app.url_map.bind("localhost")
    try:
        adapter.match(request.path, method="__NONE__")
    except WerkzeugMethodNotAllowed as exc:
        for method in exc.valid_methods or ():
            try:
                return adapter.match(request.path, method=method)[0]
            except Exception:  # noqa: BLE001 - another rule's converter may refuse it
                continue
    except Exception:  # noqa: BLE001 - no route at this path (NotFound), or a redirect
        return None
    return None


def render_error(err: ServiceError, style: ErrorStyle) -> tuple[int, dict]:
    """(status, body) of `err` in `style`: the status from :data:`STATUS` (TEI's own where the row
    has one), the body in the dialect's shape. TEI's and Cohere's bodies carry no `param`: their
    message starts with it (`"texts: ..."`) unless it names it already."""
    row = row_of(err)
    if style is ErrorStyle.FLAT:
        return row.status, {"error": err.message}
    # TEI's and Cohere's bodies have no `param`: their message names the field instead
    message = err.message if not err.param or err.param in err.message else f"{err.param}: {err.message}"
    if style is ErrorStyle.TEI:
        return row.tei_status or row.status, {"error": message, "error_type": row.tei}
    if style is ErrorStyle.COHERE:
        return row.status, {"id": request_id(), "message": message}
    kind = row.vllm if style is ErrorStyle.VLLM else row.type
    return row.status, {"error": {"message": err.message, "type": kind, "param": err.param, "code": row.status}}


def error_response(err: ServiceError) -> Response:
    """Render `err` as a JSON response (:func:`render_error` in the request's
    :func:`current_error_style`) with its headers."""
    status, body = render_error(err, current_error_style())
    try:
        payload = orjson.dumps(body)
    except TypeError:  # a lone surrogate from a client's field name: escape it instead of failing
        payload = json.dumps(body).encode()
    resp = Response(payload, status=status, mimetype="application/json")
    for key, value in error_headers(err).items():
        resp.headers[key] = value
    return resp


#: A client's X-Request-ID is kept only when it matches this (it goes into logs and headers as is).
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def request_id() -> str:
    """The request id (kept on `g`): the client's `X-Request-ID` when it is 1 to 64 characters from
    `A-Z a-z 0-9 . _ : -`, else a new one (32 hex digits); the response echoes the one used."""
    rid = getattr(g, "request_id", None)
    if rid is None:
        given = request.headers.get("X-Request-ID", "")
        rid = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        g.request_id = rid
    return rid
