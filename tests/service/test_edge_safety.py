"""Edge safety in one process: one rate-limit budget per key across routes, failed authentications limited per
address, an unreachable rate-limit storage (open, closed, recovery), log lines a client cannot forge, metric
labels a client cannot multiply, and the 413s Werkzeug reports for streamed bodies and multipart part counts.
Traffic goes to the Flask test client or to a server on 127.0.0.1 only."""

from __future__ import annotations

import http.client
import io
import json
import logging
import random
import re
import shutil
import subprocess
import time
from contextlib import contextmanager

import pytest

from conftest import free_port, load_registry, serve
from embedding_service.http import rate_limit_storage
from embedding_service.process.boot import local_app
from embedding_service.config.settings import Settings

GOOD = {"input": "a cat sits on the mat"}
HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def registry():
    return load_registry(Settings.from_mapping({"LOG_LEVEL": "WARNING"}))


def make_app(registry, **env):
    env = {"LOG_LEVEL": "WARNING", "DEVICE": "cpu", **env}
    return local_app(Settings.from_mapping(env), engines=registry)


def make_client(registry, **env):
    return make_app(registry, **env).test_client()


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def our_handler() -> logging.Handler:
    return next(h for h in logging.getLogger("embedding_service").handlers if getattr(h, "_embedding_service", False))


@contextmanager
def captured_log():
    """What our log handler writes (in its current format), as text."""
    handler, buffer = our_handler(), io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


def metric_value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# ------------------------------------------------------------------ one budget per key
def test_spreading_requests_over_routes_does_not_raise_a_keys_budget(registry):
    client = make_client(registry, API_KEYS="k1,k2", RATE_LIMIT_REQUESTS="4", RATE_LIMIT_WINDOW="60")
    k1 = bearer("k1")
    spent = [
        client.post("/v1/embeddings", json=GOOD, headers=k1),
        client.post("/v1/embeddings", json=GOOD, headers=k1),
        client.post("/embed", json={"inputs": "x"}, headers=k1),
        client.post("/embed", json={"inputs": "x"}, headers=k1),
    ]
    assert [r.status_code for r in spent] == [200] * 4
    assert [r.headers["X-RateLimit-Remaining"] for r in spent] == ["3", "2", "1", "0"]
    fifth = client.post("/api/embed", json={"input": "x"}, headers=k1)
    assert fifth.status_code == 429 and 0 < int(fifth.headers["Retry-After"]) <= 60
    assert "4 per 60 second" in fifth.get_json()["error"]  # Ollama's flat error body
    assert client.get("/v1/models", headers=k1).status_code == 429  # the same budget on every route
    assert client.post("/v1/embeddings", json=GOOD, headers=bearer("k2")).status_code == 200  # its own budget
    for path in ("/health", "/ready", "/metrics", "/") * 3:  # public paths stay exempt
        resp = client.get(path, headers=k1)
        assert resp.status_code == 200 and "X-RateLimit-Limit" not in resp.headers, path


def test_one_budget_per_address_without_keys(registry):
    client = make_client(registry, RATE_LIMIT_REQUESTS="2")
    assert client.post("/v1/embeddings", json=GOOD).status_code == 200
    assert client.post("/embed", json={"inputs": "x"}).status_code == 200
    assert client.post("/api/embed", json={"input": "x"}).status_code == 429
    assert client.post("/api/embed", json={"input": "x"}, environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200


# ------------------------------------------------------------------ failed authentications
def test_failed_authentications_are_limited_per_address(registry):
    client = make_client(registry, API_KEYS="right-key", AUTH_FAILURE_LIMIT="3")  # RATE_LIMIT_REQUESTS stays 0
    for headers in (bearer("wrong-1"), {}, {"Authorization": "Token wrong"}):  # invalid, missing, malformed
        assert client.post("/v1/embeddings", json=GOOD, headers=headers).status_code == 401
    fourth = client.post("/v1/embeddings", json=GOOD, headers=bearer("wrong-4"))
    assert fourth.status_code == 429 and 0 < int(fourth.headers["Retry-After"]) <= 60
    err = fourth.get_json()["error"]
    assert err["type"] == "rate_limit_error" and "AUTH_FAILURE_LIMIT" in err["message"] and "3 per 60 second" in err["message"]
    # locked out before any key is compared: the right key from this address waits too
    assert client.post("/v1/embeddings", json=GOOD, headers=bearer("right-key")).status_code == 429
    assert client.get("/health").status_code == 200  # public paths are not locked
    other = {"REMOTE_ADDR": "10.9.8.7"}
    assert client.post("/v1/embeddings", json=GOOD, headers=bearer("right-key"), environ_base=other).status_code == 200
    assert client.post("/v1/embeddings", json=GOOD, headers=bearer("wrong"), environ_base=other).status_code == 401


# ------------------------------------------------------------------ rate-limit storage down
def down_uri() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # a free loopback port: nothing listens there


def test_storage_down_open_serves_and_warns_once(registry, caplog, monkeypatch):
    monkeypatch.setattr(rate_limit_storage, "PROBE_SECONDS", 60.0)  # one failed call, then no retry during the test
    client = make_client(registry, API_KEYS="k", RATE_LIMIT_REQUESTS="2", RATE_LIMIT_STORAGE_URI=down_uri(),
                         RATE_LIMIT_ON_STORAGE_ERROR="open")
    before = metric_value(client.get("/metrics").get_data(as_text=True), "embedding_rate_limit_storage_errors_total")
    with caplog.at_level(logging.INFO):
        served = [client.post("/v1/embeddings", json=GOOD, headers=bearer("k")) for _ in range(5)]
        refused = [client.post("/v1/embeddings", json=GOOD, headers=bearer("nope")) for _ in range(3)]
    assert [r.status_code for r in served] == [200] * 5  # past the limit of 2: unlimited while the storage is down
    assert "X-RateLimit-Limit" not in served[0].headers
    assert [r.status_code for r in refused] == [401] * 3
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert warnings[0].name == "embedding_service.http.security" and "unreachable" in warnings[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)  # no traceback, per request or otherwise
    after = metric_value(client.get("/metrics").get_data(as_text=True), "embedding_rate_limit_storage_errors_total")
    assert after - before == 1


def test_storage_down_closed_answers_503(registry, monkeypatch):
    monkeypatch.setattr(rate_limit_storage, "PROBE_SECONDS", 60.0)
    client = make_client(registry, RATE_LIMIT_REQUESTS="2", RATE_LIMIT_STORAGE_URI=down_uri(),
                         RATE_LIMIT_ON_STORAGE_ERROR="closed")
    for _ in range(3):
        resp = client.post("/v1/embeddings", json=GOOD)
        assert resp.status_code == 503 and 0 < int(resp.headers["Retry-After"]) <= 60
        err = resp.get_json()["error"]
        assert err["type"] == "service_unavailable" and "RATE_LIMIT_ON_STORAGE_ERROR=closed" in err["message"]
    assert client.get("/health").status_code == 200


def test_storage_outage_ends_with_one_recovered_line(registry, caplog, monkeypatch, tmp_path):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    monkeypatch.setattr(rate_limit_storage, "PROBE_SECONDS", 0.2)
    port = free_port()
    client = make_client(registry, RATE_LIMIT_REQUESTS="3", RATE_LIMIT_STORAGE_URI=f"redis://127.0.0.1:{port}/0")
    proc = None
    try:
        with caplog.at_level(logging.INFO, logger="embedding_service.http.security"):
            assert client.post("/v1/embeddings", json=GOOD).status_code == 200  # open: served
            proc = subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            import redis

            for _ in range(100):
                try:
                    redis.Redis(port=port).ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            time.sleep(0.25)
            statuses = [client.post("/v1/embeddings", json=GOOD).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]  # counted again once the storage is back
        lines = [r.getMessage() for r in caplog.records if r.name == "embedding_service.http.security"]
        assert len(lines) == 2 and "unreachable" in lines[0] and "recovered" in lines[1], lines
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)


# ------------------------------------------------------------------ logs
def test_control_characters_cannot_forge_log_lines(registry):
    client = make_client(registry)
    with captured_log() as out:
        resp = client.post("/v1/embeddings%0Afake line%0D%1B[31mred%00nul%7F", json=GOOD, headers={"X-Request-ID": "inj-1"})
    assert resp.status_code == 404
    text = out.getvalue()
    assert "\x1b" not in text and "\x00" not in text and "\x7f" not in text and "\r" not in text
    lines = [line for line in text.splitlines() if "embedding_service.access" in line]
    assert len(lines) == 1 and len(text.splitlines()) == 1, text
    assert '"POST /v1/embeddings\\nfake line\\r\\x1b[31mred\\x00nul\\x7f" 404' in lines[0]
    assert "id=inj-1" in lines[0]


def test_quotes_in_the_path_cannot_add_fields(registry):
    client = make_client(registry)
    with captured_log() as out:
        client.post('/x%22 200 0.1ms id=forged model=x items=1 tokens=1 %22', json=GOOD, headers={"X-Request-ID": "q-1"})
    line = out.getvalue().strip()
    assert '"POST /x\\" 200 0.1ms id=forged model=x items=1 tokens=1 \\"" 404' in line
    assert len(re.findall(r'(?<!\\)"', line)) == 2  # the request is still one quoted field


def test_json_log_lines_stay_json(registry):
    client = make_client(registry, LOG_FORMAT="json")
    try:
        with captured_log() as out:
            client.post("/v1/embeddings%0Afake%1B%00", json=GOOD)
        lines = out.getvalue().splitlines()
        assert len(lines) == 1
        assert json.loads(lines[0])["path"] == "/v1/embeddings\nfake\x1b\x00"
    finally:
        make_client(registry)  # back to text for the other tests


@pytest.mark.parametrize("given", [
    "abc id=forged",
    "x" * 200,
    "x" * 65,
    "abc\x1b[31m",
    "abc\x00def",
    "abc\x7f",
    "caf\u00e9",
    'a"b',
])
def test_unsafe_request_ids_are_replaced(registry, given):
    client = make_client(registry)
    with captured_log() as out:
        resp = client.post("/v1/embeddings", json=GOOD, headers={"X-Request-ID": given})
    rid = resp.headers["X-Request-ID"]
    assert HEX_ID.fullmatch(rid) and rid != given
    line = out.getvalue().strip()
    assert f" id={rid} " in line and "forged" not in line


@pytest.mark.parametrize("given", ["trace-123", "a.b_c:d-e", "x" * 64, "0"])
def test_safe_request_ids_are_kept(registry, given):
    resp = make_client(registry).post("/v1/embeddings", json=GOOD, headers={"X-Request-ID": given})
    assert resp.status_code == 200 and resp.headers["X-Request-ID"] == given


# ------------------------------------------------------------------ metric labels
def method_labels(text: str) -> set:
    return set(re.findall(r'^embedding_requests_total\{[^}]*method="([^"]*)"', text, re.M))


def test_random_methods_add_at_most_one_label(registry):
    client = make_client(registry)
    before = method_labels(client.get("/metrics").get_data(as_text=True))
    rng = random.Random(7)
    for _ in range(200):
        name = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(10))
        assert client.open("/v1/embeddings", method=name).status_code == 405
    client.open("/v1/embeddings", method="GET")
    after = method_labels(client.get("/metrics").get_data(as_text=True))
    assert after - before <= {"other", "GET"}
    assert after <= {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "other"}


# ------------------------------------------------------------------ 413s
@pytest.fixture(scope="module")
def small_body_url(registry):
    url, server = serve(make_app(registry, MAX_CONTENT_LENGTH="2048"))
    yield url
    server.shutdown()


def post_chunked(url: str, body: bytes, chunk: int = 500) -> tuple[int, dict]:
    """POST /v1/embeddings with Transfer-Encoding: chunked (no Content-Length) on a real server."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        pieces = (body[i:i + chunk] for i in range(0, len(body), chunk))
        conn.request("POST", "/v1/embeddings", body=pieces, encode_chunked=True,
                     headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_chunked_body_over_max_content_length_is_413(small_body_url):
    status, body = post_chunked(small_body_url, json.dumps({"input": ["x" * 4000]}).encode())
    assert status == 413, body
    assert "MAX_CONTENT_LENGTH" in body["error"]["message"] and "2048" in body["error"]["message"]
    assert body["error"]["type"] == "payload_too_large"
    exact = json.dumps(GOOD).encode().ljust(2048)  # exactly the limit (trailing spaces are valid JSON)
    status, body = post_chunked(small_body_url, exact)
    assert status == 200 and len(body["data"][0]["embedding"]) == 384
    status, body = post_chunked(small_body_url, json.dumps(GOOD).encode(), chunk=7)
    assert status == 200


def test_multipart_over_the_part_limit_names_the_part_limit(registry):
    client = make_client(registry)
    files = {"file": [(io.BytesIO(b"x"), f"{i}.png") for i in range(1001)]}
    resp = client.post("/embed", data=files, content_type="multipart/form-data")
    assert resp.status_code == 413
    message = resp.get_json()["error"]["message"]
    assert "more than 1000 parts" in message and "MAX_CONTENT_LENGTH" not in message


def test_multipart_limits_are_told_apart(registry):
    app = make_app(registry, MAX_CONTENT_LENGTH="1000000")
    app.config.update(MAX_FORM_PARTS=3, MAX_FORM_MEMORY_SIZE=100_000)  # Flask 3.1's settings for Werkzeug's limits
    client = app.test_client()
    parts = client.post("/embed", data={"file": [(io.BytesIO(b"x"), f"{i}.png") for i in range(5)]},
                        content_type="multipart/form-data")
    assert parts.status_code == 413 and "more than 3 parts" in parts.get_json()["error"]["message"]
    field = client.post("/embed", data={"model": "m" * 150_000}, content_type="multipart/form-data")
    assert field.status_code == 413 and "larger than 100000 bytes" in field.get_json()["error"]["message"]
    big = client.post("/embed", data={"file": (io.BytesIO(b"x" * 1_200_000), "big.png")}, content_type="multipart/form-data")
    assert big.status_code == 413 and "MAX_CONTENT_LENGTH (1000000 bytes)" in big.get_json()["error"]["message"]
