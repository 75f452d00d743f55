"""Production hardening in one process: API keys, rate limits, CORS, request ids and the access log, metrics,
readiness while loading, the per-input character cap. Each refusal is followed by a request that
succeeds."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from conftest import load_registry
from support.errors import expect_error
from embedding_service.http.app import create_app
from embedding_service.process.boot import local_app
from embedding_service.observability.logs import JsonFormatter
from embedding_service.inference.registry import Registry
from embedding_service.inference.runtime import Runtime
from embedding_service.config.settings import Settings
from embedding_service.operations.state import ServiceState, WorkerInfo
from embedding_service.process.boot import load_in_background

GOOD = {"input": "a cat sits on the mat"}


@pytest.fixture(scope="module")
def minilm_registry():
    return load_registry(Settings.from_mapping({"LOG_LEVEL": "WARNING"}))


def make_client(registry, **env):
    env = {"LOG_LEVEL": "WARNING", "DEVICE": "cpu", **env}
    return local_app(Settings.from_mapping(env), engines=registry).test_client()


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


# ------------------------------------------------------------------ API keys
def test_api_keys(minilm_registry):
    client = make_client(minilm_registry, API_KEY="alpha-key", API_KEYS="beta-key,gamma-key")
    cases = [
        ({}, "missing API key", 'Bearer realm="embedding_service"'),
        ({"Authorization": "Token alpha-key"}, "malformed", "invalid_request"),
        ({"Authorization": "Bearer"}, "malformed", "invalid_request"),
        (bearer("alpha-key-wrong"), "invalid API key", "invalid_token"),
        (bearer("ALPHA-KEY"), "invalid API key", "invalid_token"),
    ]
    for headers, fragment, challenge in cases:
        resp = client.post("/v1/embeddings", json=GOOD, headers=headers)
        assert resp.status_code == 401
        assert challenge in resp.headers["WWW-Authenticate"] and resp.headers["WWW-Authenticate"].startswith("Bearer")
        err = resp.get_json()["error"]
        assert err["code"] == 401 and fragment in err["message"] and "alpha" not in err["message"]
        assert client.post("/v1/embeddings", json=GOOD, headers=bearer("beta-key")).status_code == 200
    for key in ("alpha-key", "beta-key", "gamma-key"):
        assert client.post("/v1/embeddings", json=GOOD, headers=bearer(key)).status_code == 200
    for path in ("/health", "/ready", "/metrics", "/", "/docs", "/openapi.json", "/docs/swagger-ui.css"):
        assert client.get(path).status_code == 200, path
    assert client.get("/info").status_code == 401
    spec = client.get("/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert spec["paths"]["/health"]["get"]["security"] == []


def test_public_paths_are_configurable(minilm_registry):
    client = make_client(minilm_registry, API_KEYS="k", AUTH_PUBLIC_PATHS="/health")
    assert client.get("/health").status_code == 200
    assert client.get("/metrics").status_code == 401 and client.get("/docs").status_code == 401
    assert client.get("/metrics", headers=bearer("k")).status_code == 200


# ------------------------------------------------------------------ rate limits
def test_rate_limit_per_key_with_headers(minilm_registry):
    client = make_client(minilm_registry, API_KEYS="k1,k2", RATE_LIMIT_REQUESTS="5", RATE_LIMIT_WINDOW="60")
    for i in range(5):
        resp = client.post("/v1/embeddings", json=GOOD, headers=bearer("k1"))
        assert resp.status_code == 200
        assert resp.headers["X-RateLimit-Limit"] == "5" and resp.headers["X-RateLimit-Remaining"] == str(4 - i)
    resp = client.post("/v1/embeddings", json=GOOD, headers=bearer("k1"))
    assert resp.status_code == 429
    assert 0 < int(resp.headers["Retry-After"]) <= 60 and resp.headers["X-RateLimit-Remaining"] == "0"
    err = resp.get_json()["error"]
    assert err["code"] == 429 and err["type"] == "rate_limit_error" and "5 per 60 second" in err["message"]
    assert client.post("/v1/embeddings", json=GOOD, headers=bearer("k2")).status_code == 200  # its own budget
    assert client.get("/health").status_code == 200  # probes are never limited
    assert client.post("/v1/embeddings", json=GOOD, headers=bearer("bad")).status_code == 401


def test_rate_limit_per_address_without_auth(minilm_registry):
    client = make_client(minilm_registry, RATE_LIMIT_REQUESTS="2", RATE_LIMIT_WINDOW="60")
    other = {"REMOTE_ADDR": "10.1.2.3"}
    assert [client.post("/embed", json={"inputs": "x"}).status_code for _ in range(3)] == [200, 200, 429]
    assert client.post("/embed", json={"inputs": "x"}, environ_base=other).status_code == 200


# ------------------------------------------------------------------ CORS
def test_cors_only_for_listed_origins(minilm_registry):
    client = make_client(minilm_registry, CORS_ORIGINS="https://app.example.com")
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    ok = client.options("/v1/embeddings", headers={"Origin": "https://app.example.com", **preflight})
    assert ok.headers.get("Access-Control-Allow-Origin") == "https://app.example.com"
    bad = client.options("/v1/embeddings", headers={"Origin": "https://evil.example.net", **preflight})
    assert "Access-Control-Allow-Origin" not in bad.headers
    plain = make_client(minilm_registry)
    off = plain.options("/v1/embeddings", headers={"Origin": "https://app.example.com", **preflight})
    assert "Access-Control-Allow-Origin" not in off.headers
    assert client.post("/v1/embeddings", json=GOOD, headers={"Origin": "https://app.example.com"}).status_code == 200


def test_cors_preflight_needs_no_key(minilm_registry):
    client = make_client(minilm_registry, CORS_ORIGINS="https://app.example.com", API_KEYS="k")
    resp = client.options(
        "/v1/embeddings",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"},
    )
    assert resp.status_code == 200 and resp.headers["Access-Control-Allow-Origin"] == "https://app.example.com"


# ------------------------------------------------------------------ limits
def test_input_character_cap(minilm_registry):
    client = make_client(minilm_registry, MAX_INPUT_CHARS="1000")
    resp = client.post("/v1/embeddings", json={"input": ["ok", "x" * 1001]})
    assert resp.status_code == 413
    err = resp.get_json()["error"]
    assert err["param"] == "input" and "input[1]" in err["message"] and "1000" in err["message"]
    resp = client.post("/rerank", json={"query": "q" * 1001, "documents": ["a"]})
    expect_error(resp, 413, "query", "MAX_INPUT_CHARS", style="cohere")  # Cohere's request: Cohere's error body
    assert client.post("/v1/embeddings", json={"input": "x" * 1000}).status_code == 200


# ------------------------------------------------------------------ request ids, access log
def test_request_id_and_access_log(minilm_registry, caplog):
    client = make_client(minilm_registry)
    with caplog.at_level(logging.INFO, logger="embedding_service.access"):
        resp = client.post("/v1/embeddings", json={"input": ["one", "two"]}, headers={"X-Request-ID": "trace-123"})
        made = client.post("/embed", json={"inputs": "x"})
    assert resp.headers["X-Request-ID"] == "trace-123"
    assert len(made.headers["X-Request-ID"]) == 32
    records = [r for r in caplog.records if r.name == "embedding_service.access"]
    line = next(r for r in records if getattr(r, "request_id", None) == "trace-123")
    assert (line.status, line.model, line.items, line.method, line.path) == (
        200, "sentence-transformers/all-MiniLM-L6-v2", 2, "POST", "/v1/embeddings")
    assert line.tokens == resp.get_json()["usage"]["prompt_tokens"] and line.duration_ms > 0
    assert "id=trace-123" in line.getMessage()
    parsed = json.loads(JsonFormatter().format(line))
    assert parsed["request_id"] == "trace-123" and parsed["status"] == 200 and parsed["level"] == "INFO"
    assert parsed["message"].startswith("127.0.0.1 \"POST /v1/embeddings\" 200")


def test_json_log_format_configures_our_handler(minilm_registry):
    make_client(minilm_registry, LOG_FORMAT="json")
    handler = next(h for h in logging.getLogger("embedding_service").handlers if getattr(h, "_embedding_service", False))
    assert isinstance(handler.formatter, JsonFormatter)
    make_client(minilm_registry)  # back to text for the other tests
    assert not isinstance(handler.formatter, JsonFormatter)


# ------------------------------------------------------------------ metrics
def sample(text: str, name: str, labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(part in line for part in labels.split(",")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_batches_and_tokens(minilm_registry):
    client = make_client(minilm_registry)
    before = client.get("/metrics").get_data(as_text=True)
    for _ in range(3):
        client.post("/v1/embeddings", json={"input": ["a b c", "d e"]})
    client.post("/v1/embeddings", json={"input": ""})
    after = client.get("/metrics")
    assert after.mimetype == "text/plain"
    text = after.get_data(as_text=True)
    ok = 'route="/v1/embeddings",method="POST",status="200"'
    assert sample(text, "embedding_requests_total", ok) - sample(before, "embedding_requests_total", ok) == 3
    bad = 'route="/v1/embeddings",method="POST",status="400"'
    assert sample(text, "embedding_requests_total", bad) - sample(before, "embedding_requests_total", bad) == 1
    model = 'model="sentence-transformers/all-MiniLM-L6-v2"'
    assert sample(text, "embedding_items_total", model) - sample(before, "embedding_items_total", model) == 6
    assert sample(text, "embedding_tokens_total", model) - sample(before, "embedding_tokens_total", model) == 3 * (5 + 4)
    for name in ("embedding_request_duration_seconds_bucket", "embedding_queue_duration_seconds_bucket",
                 "embedding_inference_duration_seconds_bucket", "embedding_batch_size_bucket",
                 "embedding_queue_depth", "embedding_model_load_seconds"):
        assert name in text, name


# ------------------------------------------------------------------ readiness while loading
def test_ready_is_503_while_models_load(minilm_registry, monkeypatch):
    release = threading.Event()

    def slow_load(settings, runtime, warmup=True):
        release.wait(30)
        return minilm_registry

    monkeypatch.setattr(Registry, "load", staticmethod(slow_load))
    settings = Settings.from_mapping({"LOG_LEVEL": "WARNING"})
    state = ServiceState.create(settings, WorkerInfo(device="cpu"))
    app = create_app(state)
    load_in_background(settings, Runtime.local(settings, "cpu"), state, exit_on_failure=False)
    client = app.test_client()
    assert client.get("/health").status_code == 200
    resp = client.get("/ready")
    assert resp.status_code == 503 and resp.get_json()["status"] == "loading" and resp.headers["Retry-After"]
    busy = client.post("/v1/embeddings", json=GOOD)
    assert busy.status_code == 503 and "loading" in busy.get_json()["error"]["message"]
    release.set()
    for _ in range(100):
        if client.get("/ready").status_code == 200:
            break
        threading.Event().wait(0.05)
    assert client.get("/ready").get_json()["status"] == "ready"
    assert client.post("/v1/embeddings", json=GOOD).status_code == 200
