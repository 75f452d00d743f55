"""The handlers that turn every failure into a row of the error table (:mod:`.errors`):
service errors as they are, Werkzeug's own HTTP errors (routing, body size) onto their rows,
and any unexpected exception into a 500 naming the request id (logged with its traceback)."""

from __future__ import annotations

import logging

from flask import Flask, current_app, request
from werkzeug.exceptions import HTTPException

from ..domain.errors import InvalidInput, LimitExceeded, NotFound, ServiceError, UnsupportedMedia
from .errors import HttpError, HttpStatus, MethodNotAllowed, RateLimited, error_response, request_id

log = logging.getLogger("embedding_service.errors")

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
