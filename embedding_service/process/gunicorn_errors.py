"""Gunicorn's own error answers in the service's JSON error shape.

Gunicorn answers a request it cannot parse before the app sees it (a malformed request line or
header: 400; a request line over `limit_request_line`: 414; more or longer headers than its
limits: 431; an unsupported transfer coding: 501) with an HTML page written by
`gunicorn.util.write_error`. :func:`install` replaces that function in the worker with one that
writes `{"error": {"message", "type", "param": null, "code"}}`, the body every route but
Ollama's answers with (Gunicorn answers before any route is chosen), the message cut to 200
characters."""

from __future__ import annotations

import json

from gunicorn import util

#: Gunicorn's statuses -> the body's `type` (the service's names where it has one).
TYPES = {
    400: "invalid_request_error", 403: "permission_error", 414: "uri_too_long", 417: "expectation_failed",
    431: "request_header_fields_too_large", 500: "internal_error", 501: "not_implemented",
}
#: Characters of Gunicorn's message kept (it may quote the client's request line or header).
MESSAGE_CHARS = 200


def json_error(status: int, reason: str, message: str) -> bytes:
    """The whole HTTP/1.1 response (connection closed) for one of Gunicorn's errors."""
    text = (message or reason)[:MESSAGE_CHARS]
    body = json.dumps({"error": {"message": text, "type": TYPES.get(status, "invalid_request_error"),
                                 "param": None, "code": status}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """`gunicorn.util.write_error`'s signature, writing :func:`json_error`."""
    util.write_nonblock(sock, json_error(int(status_int), reason, mesg))


def install() -> None:
    """In a worker process: Gunicorn's error pages become JSON (see the module docstring)."""
    util.write_error = write_json_error
