"""The HTTP edge of the errors: the one table mapping every error to a status code, and the
handlers that render it.

Every layer raises :mod:`embedding_service.domain.errors` classes (plain exceptions); the edge
adds its own (:class:`Unauthorized`, :class:`RateLimited`, :class:`MethodNotAllowed`, and
:class:`HttpStatus` for Werkzeug's other statuses). :data:`STATUS` is the only place that turns
a class into a status code. A body has the shape of the matched route's declared
:class:`ErrorStyle`: `{"error": {"message", "type", "param", "code"}}` everywhere except on the
routes declaring the flat style (Ollama's), which answer `{"error": str}`. Bodies never carry a
stack trace, a server path or a library's exception text; unexpected exceptions become a 500
that names the request id.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from enum import Enum
from typing import Optional

import orjson
from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from ..domain.errors import (
    InternalError,
    InvalidInput,
    LimitExceeded,
    NotAllowed,
    NotFound,
    ServiceError,
    Unavailable,
    UnsupportedMedia,
    Unprocessable,
)

log = logging.getLogger("embedding_service.errors")


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


#: The one error-to-status table: error class -> (status, the body's `type`). A subclass takes
#: its nearest listed ancestor's row (ModelNotFound is a NotFound: 404).
STATUS: dict[type, tuple[int, str]] = {
    InvalidInput: (400, "invalid_request_error"),
    Unauthorized: (401, "authentication_error"),
    NotAllowed: (403, "permission_error"),
    NotFound: (404, "not_found_error"),
    MethodNotAllowed: (405, "method_not_allowed"),
    LimitExceeded: (413, "payload_too_large"),
    UnsupportedMedia: (415, "unsupported_media_type"),
    Unprocessable: (422, "unprocessable_entity"),
    RateLimited: (429, "rate_limit_error"),
    InternalError: (500, "internal_error"),
    Unavailable: (503, "service_unavailable"),
}


def status_of(err: ServiceError) -> tuple[int, str]:
    """(status code, body `type`) of `err`, from :data:`STATUS` (500 for an unlisted class)."""
    if isinstance(err, HttpStatus):
        return err.status, "internal_error" if err.status >= 500 else "invalid_request_error"
    for cls in type(err).__mro__:
        row = STATUS.get(cls)
        if row is not None:
            return row
    return STATUS[InternalError]


def error_headers(err: ServiceError) -> dict:
    """`Retry-After` (whole seconds) from `err.retry_after`, plus an edge error's own headers."""
    headers = {"Retry-After": str(err.retry_after)} if err.retry_after is not None else {}
    headers.update(getattr(err, "headers", {}))
    return headers


#: Werkzeug's own HTTP errors (routing, body size) mapped onto the table.
_HTTP_TO_ERROR = {
    400: InvalidInput,
    404: NotFound,
    405: MethodNotAllowed,
    413: LimitExceeded,
    415: UnsupportedMedia,
    429: RateLimited,
}
_HTTP_MESSAGES = {
    404: "no route {method} {path}; GET / lists the routes",
    405: "method {method} is not allowed on {path}",
    413: "request body is larger than MAX_CONTENT_LENGTH ({limit} bytes)",
}


class ErrorStyle(Enum):
    """The error body shape a route declares (api.routing.Operation.error_style)."""

    #: `{"error": {"message": str, "type": str, "param": str | null, "code": int}}`
    NESTED = "nested"
    #: `{"error": str}`, the message alone, as Ollama answers
    FLAT = "flat"


def current_error_style() -> ErrorStyle:
    """The error style declared by the current request's view (`view.operation.error_style`).

    NESTED when no route matched (404 on an unknown path, 405 on a known path with the wrong
    method: routing fails before a view is chosen) or when the view declares no operation."""
    endpoint = request.endpoint
    view = current_app.view_functions.get(endpoint) if endpoint is not None else None
    return getattr(getattr(view, "operation", None), "error_style", ErrorStyle.NESTED)


def error_response(err: ServiceError) -> Response:
    """Render `err` as a JSON response with its status (:func:`status_of`) and headers, in the
    body shape of the current route's :func:`current_error_style`."""
    status, kind = status_of(err)
    if current_error_style() is ErrorStyle.FLAT:
        body: dict = {"error": err.message}
    else:
        body = {"error": {"message": err.message, "type": kind, "param": err.param, "code": status}}
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


#: Where Werkzeug 3.1 raises its bare RequestEntityTooLarge for a limit other than the body size
#: (module, function of the raising frame) -> the message naming that limit.
_FORM_LIMITS = {
    ("werkzeug.sansio.multipart", "next_event"): "the multipart upload has more than {parts} parts; send fewer files",
    ("werkzeug.sansio.multipart", "receive_data"): "a form field of the multipart upload is larger than {field} bytes",
    ("werkzeug.formparser", "parse"): "a form field of the multipart upload is larger than {field} bytes",
}


def _too_large_message(exc: HTTPException) -> str:
    """The message of a Werkzeug 413, naming the limit it hit.

    Werkzeug raises the same RequestEntityTooLarge for the body size (Content-Length or a streamed
    body over MAX_CONTENT_LENGTH), for more multipart parts than `max_form_parts` and for a
    multipart text field over `max_form_memory_size`; the frame that raised it tells them apart.
    """
    tb, where = exc.__traceback__, None
    while tb is not None:
        where, tb = (tb.tb_frame.f_globals.get("__name__"), tb.tb_frame.f_code.co_name), tb.tb_next
    template = _FORM_LIMITS.get(where, _HTTP_MESSAGES[413])
    return template.format(
        parts=request.max_form_parts, field=request.max_form_memory_size,
        limit=current_app.config.get("MAX_CONTENT_LENGTH"),
    )


def register_error_handlers(app: Flask) -> None:
    """Install the handlers that turn every failure into a table row."""

    @app.errorhandler(ServiceError)
    def _service_error(err: ServiceError):
        return error_response(err)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = exc.code or 500
        template = _HTTP_MESSAGES.get(code)
        if code == 413:
            message = _too_large_message(exc)
        elif template:
            message = template.format(
                method=request.method, path=request.path, limit=app.config.get("MAX_CONTENT_LENGTH")
            )
        elif code == 429:
            message = f"rate limit exceeded ({exc.description}); retry after Retry-After seconds"
        else:
            message = exc.name.lower() if code < 500 else "internal error"
        headers = {}
        if code == 405:
            allow = getattr(exc, "valid_methods", None) or []
            headers["Allow"] = ", ".join(sorted(allow))
        cls = _HTTP_TO_ERROR.get(code)
        err = cls(message, headers=headers) if issubclass(cls or object, HttpError) else (
            cls(message) if cls is not None else HttpStatus(message, code, headers)
        )
        return error_response(err)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        rid = request_id()
        log.exception("unhandled error in %s %s (request id %s)", request.method, request.path, rid)
        return error_response(
            HttpStatus(f"internal error; quote request id {rid} when reporting it", 500, headers={"X-Request-ID": rid})
        )
