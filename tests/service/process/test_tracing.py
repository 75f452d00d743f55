"""OpenTelemetry traces under Gunicorn: a real OTLP/HTTP receiver on loopback (decoding the
protobuf with opentelemetry-proto), Gunicorn with 2 workers each exporting its own spans, a
client's `traceparent` continued, the service's stages as children of the request's span, and
the trace id in the JSON access log. Off without the OTEL_* variables."""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from support.servers import free_port, start_gunicorn, stop, wait_healthy

pytestmark = pytest.mark.slow


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver: every span of every export, with its resource attributes."""

    def __init__(self, port: int):
        super().__init__(("127.0.0.1", port), Handler)
        self.spans: list[dict] = []
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        body = self.rfile.read(int(self.headers["Content-Length"]))
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        found = []
        for resource_spans in export.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    found.append({
                        "name": span.name, "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                        "parent": span.parent_span_id.hex(), "attributes": {a.key: _value(a.value) for a in span.attributes},
                        "resource": resource, "start": span.start_time_unix_nano, "end": span.end_time_unix_nano,
                    })
        with self.server.lock:
            self.server.spans.extend(found)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):  # quiet
        pass


def _value(value):
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    receiver = Receiver(free_port())
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    folder = tmp_path_factory.mktemp("traced")
    url, proc = start_gunicorn(folder, WORKERS="2", THREADS="4", LOG_FORMAT="json", LOG_LEVEL="INFO",
                               OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver.server_port}",
                               OTEL_SERVICE_NAME="embedding-test", OTEL_BSP_SCHEDULE_DELAY="100")
    try:
        wait_healthy(url, proc, workers=2)
        yield url, receiver, folder
    finally:
        stop(proc)
        receiver.shutdown()


def wait_for(receiver: Receiver, predicate, seconds: float = 20.0) -> list[dict]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with receiver.lock:
            spans = list(receiver.spans)
        if predicate(spans):
            return spans
        time.sleep(0.1)
    pytest.fail(f"the spans did not arrive: {[(s['name'], s['trace_id'][:8]) for s in spans][-30:]}")


def test_a_requests_spans_arrive_under_the_clients_trace(traced):
    url, receiver, folder = traced
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    resp = requests.post(f"{url}/v1/embeddings", json={"input": ["a cat sits on the mat", "the stock market fell"],
                                                        "dimensions": 64},
                         headers={"traceparent": f"00-{trace_id}-{parent}-01"}, timeout=30)
    assert resp.status_code == 200
    spans = wait_for(receiver, lambda spans: {"POST /v1/embeddings", "forward pass", "postprocess"}
                     <= {s["name"] for s in spans if s["trace_id"] == trace_id})
    ours = {s["name"]: s for s in spans if s["trace_id"] == trace_id}
    server = ours["POST /v1/embeddings"]
    assert server["parent"] == parent  # the client's traceparent continued
    assert server["attributes"].get("http.response.status_code", server["attributes"].get("http.status_code")) == 200
    assert server["resource"]["service.name"] == "embedding-test"
    for stage in ("validation", "tokenization", "queue wait", "forward pass", "postprocess"):
        assert ours[stage]["parent"] == server["span_id"], stage
        assert server["start"] <= ours[stage]["start"] <= ours[stage]["end"] <= server["end"], stage
    forward = ours["forward pass"]["attributes"]
    assert forward["model"] == "sentence-transformers/all-MiniLM-L6-v2" and forward["batch.size"] >= 2
    assert forward["batch.padded_tokens"] >= forward["batch.tokens"] > 0 and forward["batch.id"] >= 1
    assert ours["validation"]["attributes"]["schema"] == "OpenAIEmbeddingRequest"
    # the JSON access log carries the trace id
    log = "".join(open(path).read() for path in folder.glob("gunicorn-*.log"))
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{") and '"embedding_service.access"' in line]
    assert any(line.get("trace_id") == trace_id and line["path"] == "/v1/embeddings" for line in lines)


def test_each_worker_exports_its_own_spans(traced):
    url, receiver, _ = traced
    sent: list[str] = []

    def exporters() -> set:
        with receiver.lock:
            return {s["resource"].get("process.pid") for s in receiver.spans if s["trace_id"] in sent}

    deadline = time.monotonic() + 60
    while len(exporters()) < 2 and time.monotonic() < deadline:  # fresh connections reach both workers in time
        trace_id = secrets.token_hex(16)
        sent.append(trace_id)
        resp = requests.post(f"{url}/v1/embeddings", json={"input": "x"}, timeout=30,
                             headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01", "Connection": "close"})
        assert resp.status_code == 200
        time.sleep(0.05)
    assert len(exporters()) == 2  # one provider and exporter per worker, after the fork
    with receiver.lock:
        assert not [s for s in receiver.spans if s["name"] in ("GET /health", "GET /ready", "GET /metrics")]  # probes untraced
