"""Requests Gunicorn refuses before the app sees them (a malformed request line, an over-long
URI, too many headers) are answered in the service's JSON error shape, not Gunicorn's HTML page,
and the worker keeps serving."""

from __future__ import annotations

import json
import socket

import pytest
import requests

from support.servers import start_gunicorn, stop, wait_healthy

pytestmark = pytest.mark.slow


def raw(url: str, payload: bytes) -> tuple[int, dict, bytes]:
    """Send `payload` on a fresh connection; (status, headers, body) of the answer."""
    host, port = url.rsplit("/", 1)[-1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(payload)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    url, proc = start_gunicorn(tmp_path_factory.mktemp("gunicorn-errors"), WORKERS="1")
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        stop(proc)


@pytest.mark.parametrize("payload, status, kind", [
    (b"NOT A REQUEST LINE\r\n\r\n", 400, "invalid_request_error"),
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
    (b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: 1\r\n" % i for i in range(120)) + b"\r\n",
     431, "request_header_fields_too_large"),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400, "invalid_request_error"),
])
def test_gunicorn_errors_are_json_in_the_service_shape(server, payload, status, kind):
    got, headers, body = raw(server, payload)
    assert got == status and headers["Content-Type"] == "application/json", (got, headers, body[:200])
    error = json.loads(body)["error"]
    assert error["code"] == status and error["type"] == kind and error["param"] is None
    assert 0 < len(error["message"]) <= 200 and "<html>" not in error["message"]
    assert requests.get(f"{server}/health", timeout=10).status_code == 200
