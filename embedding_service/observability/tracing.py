"""OpenTelemetry traces, off unless the standard `OTEL_*` variables ask for them.

On when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (and
`OTEL_SDK_DISABLED` is not true); the SDK reads the rest itself: `OTEL_SERVICE_NAME` (default
here "embedding-service"), `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and its argument,
`OTEL_EXPORTER_OTLP_*` (endpoint, headers, timeout), `OTEL_BSP_*` (batching of the export).
Spans go over OTLP/HTTP (protobuf). Under Gunicorn each worker configures its own provider and
exporter after the fork (process/boot.py); the master never imports OpenTelemetry.

A request is one server span (opentelemetry-instrumentation-flask: W3C `traceparent` continued,
`http.*` attributes), with child spans for the service's own stages: `validation` (the request
schema), `tokenization` (the tokenizer, or decoding images), `queue wait` and one `forward pass`
per batch that carried the request's items (attributes `batch.id`, `batch.size`,
`batch.tokens`, `batch.padded_tokens`, `model`), `postprocess` (dimensions, normalisation), and
`image fetch` and `image decode` per image (on the image loader's threads, `image.index`).
The access log carries the trace id. When off, every hook here is a check of one module global.
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from typing import Any, Optional

#: The tracer while tracing is on, else None (the one global every hook checks).
TRACER: Any = None
#: perf_counter seconds -> epoch nanoseconds (the batcher times passes with perf_counter).
_EPOCH_OFFSET_NS = time.time_ns() - time.perf_counter_ns()
#: Paths with no span: probes and scrapes.
EXCLUDED_URLS = "/health,/ready,/metrics"


def requested(environ: Optional[dict] = None) -> bool:
    """Whether the `OTEL_*` variables ask for traces."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure(version: str) -> bool:
    """Start this process's tracer provider and OTLP/HTTP exporter when :func:`requested`;
    returns whether tracing is on. Call once per process, after a fork."""
    global TRACER
    if not requested():
        return False
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {"service.version": version, "process.pid": os.getpid()}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = "embedding-service"
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    TRACER = trace.get_tracer("embedding_service", version)
    return True


def instrument(app: Any) -> None:
    """The server span of every request of the Flask `app` (probes and scrapes left out)."""
    if TRACER is None:
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor().instrument_app(app, excluded_urls=EXCLUDED_URLS)


def span(name: str, **attributes: Any) -> Any:
    """`with span("validation"):` a child span of the current one; nothing when tracing is off."""
    if TRACER is None:
        return nullcontext()
    return TRACER.start_as_current_span(name, attributes=attributes or None)


def current_context() -> Any:
    """The current trace context, to parent spans made on another thread (:func:`span_in`); None
    when tracing is off."""
    if TRACER is None:
        return None
    from opentelemetry import context

    return context.get_current()


def span_in(parent: Any, name: str, **attributes: Any) -> Any:
    """A span named `name` whose parent is the context `parent` (:func:`current_context`, taken
    on the request's thread): image fetches and decodes run on the loader's threads."""
    if TRACER is None or parent is None:
        return nullcontext()
    return TRACER.start_as_current_span(name, context=parent, attributes=attributes or None)


def record_batches(model: str, enqueued: float, started: Optional[float], passes: list) -> None:
    """A request's `queue wait` (enqueued -> its first pass started, perf_counter seconds) and one
    `forward pass` span per pass `(batch id, items, tokens, padded tokens, start, seconds)`, as
    children of the current span."""
    if TRACER is None:
        return
    ns = lambda seconds: int(seconds * 1e9) + _EPOCH_OFFSET_NS  # noqa: E731
    TRACER.start_span("queue wait", start_time=ns(enqueued), attributes={"model": model}).end(
        end_time=ns(started if started is not None else enqueued))
    for batch_id, size, tokens, padded, begun, seconds in passes:
        TRACER.start_span("forward pass", start_time=ns(begun), attributes={
            "model": model, "batch.id": batch_id, "batch.size": size, "batch.tokens": tokens,
            "batch.padded_tokens": padded,
        }).end(end_time=ns(begun + seconds))


def trace_id() -> Optional[str]:
    """The current span's trace id (32 hex digits), or None (tracing off, or no span)."""
    if TRACER is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
