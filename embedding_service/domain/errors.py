"""The one error-to-status table and the handlers that render it.

Views and models raise :class:`ServiceError` subclasses; nothing else decides a status code.
A body has the shape of the matched route's declared :class:`ErrorStyle`:
`{"error": {"message", "type", "param", "code"}}` everywhere except on the routes declaring the
flat style (Ollama's), which answer `{"error": str}`. Bodies never carry a stack trace, a server
path or a library's exception text; unexpected exceptions become a 500 that names the request id.
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

log = logging.getLogger("embedding_service.domain.errors")


class ServiceError(Exception):
    """Base of every client-visible error. `status` and `type` come from the table below."""

    status = 500
    type = "internal_error"

    def __init__(self, message: str, param: Optional[str] = None, headers: Optional[dict] = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers or {}


class BadRequest(ServiceError):
    status, type = 400, "invalid_request_error"


class Unauthorized(ServiceError):
    status, type = 401, "authentication_error"


class Forbidden(ServiceError):
    status, type = 403, "permission_error"


class NotFound(ServiceError):
    status, type = 404, "not_found_error"


class ModelNotFound(NotFound):
    """Unknown `model`; the message lists the served ones."""


class MethodNotAllowed(ServiceError):
    status, type = 405, "method_not_allowed"


class PayloadTooLarge(ServiceError):
    status, type = 413, "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status, type = 415, "unsupported_media_type"


class Unprocessable(ServiceError):
    status, type = 422, "unprocessable_entity"


class RateLimited(ServiceError):
    status, type = 429, "rate_limit_error"


class Unavailable(ServiceError):
    status, type = 503, "service_unavailable"


class InternalError(ServiceError):
    status, type = 500, "internal_error"


#: Werkzeug's own HTTP errors (routing, body size) mapped onto the table.
_HTTP_TO_ERROR = {
    400: BadRequest,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
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
    """Render `err` as a JSON response with its status and headers, in the body shape of the
    current route's :func:`current_error_style`."""
    if current_error_style() is ErrorStyle.FLAT:
        body: dict = {"error": err.message}
    else:
        body = {
            "error": {
                "message": err.message,
                "type": err.type,
                "param": err.param,
                "code": err.status,
            }
        }
    try:
        payload = orjson.dumps(body)
    except TypeError:  # a lone surrogate from a client's field name: escape it instead of failing
        payload = json.dumps(body).encode()
    resp = Response(payload, status=err.status, mimetype="application/json")
    for key, value in err.headers.items():
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
        cls = _HTTP_TO_ERROR.get(code, InternalError if code >= 500 else BadRequest)
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
        err = cls(message, headers=headers)
        if code not in _HTTP_TO_ERROR:
            err.status = code
        return error_response(err)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        rid = request_id()
        log.exception("unhandled error in %s %s (request id %s)", request.method, request.path, rid)
        return error_response(
            InternalError(f"internal error; quote request id {rid} when reporting it", headers={"X-Request-ID": rid})
        )
