"""The stage spans, in process with an in-memory exporter: an image request's `image fetch` and
`image decode` spans (made on the image loader's threads) sit under the request's span, inside
its `tokenization` stage, beside `validation`, `queue wait` and `forward pass`; with tracing off, no span is made and the
hooks are no-ops."""

from __future__ import annotations

import pytest

from embedding_service.observability import tracing
from support.image_files import ImageServer, data_uri, encode, picture


@pytest.fixture()
def spans(monkeypatch):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "TRACER", provider.get_tracer("test"))
    return exporter


def test_image_fetch_and_decode_are_children_of_the_request(mm_client, image_settings, spans):
    image_settings(image_allow_private_urls=True)
    server = ImageServer(encode(picture(), "PNG"))
    try:
        with tracing.TRACER.start_as_current_span("request") as request:
            resp = mm_client.post("/embed", json={"images": [data_uri(encode(picture(seed=1), "PNG")), f"{server.url}/image.png"]})
        assert resp.status_code == 200, resp.get_json()
    finally:
        server.close()
    finished = spans.get_finished_spans()
    by_id = {span.context.span_id: span for span in finished}
    root = request.get_span_context().span_id

    def chain(span) -> list[str]:
        """The names from `span`'s parent up to the request's span."""
        names = []
        while span.parent is not None and span.parent.span_id != root:
            span = by_id[span.parent.span_id]
            names.append(span.name)
        assert span.parent is not None, "not under the request's span"
        return names

    named: dict[str, list] = {}
    for span in finished:
        named.setdefault(span.name, []).append(span)
    assert [s.attributes["image.index"] for s in named["image fetch"]] == [1]
    assert sorted(s.attributes["image.index"] for s in named["image decode"]) == [0, 1]
    for span in named["image fetch"] + named["image decode"]:  # made on the loader's threads, inside the stage
        assert chain(span) == ["tokenization"], chain(span)
    for name in ("validation", "queue wait", "forward pass"):
        assert chain(named[name][0]) == [], name
    assert named["forward pass"][0].attributes["batch.size"] == 2


def test_off_means_no_span_and_no_context():
    assert tracing.TRACER is None  # no OTEL_* in the test environment
    assert tracing.current_context() is None and tracing.trace_id() is None
    assert tracing.requested({}) is False and tracing.requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}) is True
    assert tracing.requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"}) is False
    with tracing.span("validation"), tracing.span_in(None, "image decode"):
        pass
