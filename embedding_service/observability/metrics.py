"""Prometheus metrics (prometheus_client), summed over Gunicorn workers.

Under Gunicorn, `gunicorn.conf.py` points PROMETHEUS_MULTIPROC_DIR at a directory it wipes at
start, before any worker imports this module; each worker writes its values there, `child_exit`
marks dead workers, and /metrics sums every worker's files (counters of dead workers included, so
totals survive a restart). Without that variable (development server, tests) the usual
in-process registry is used.

Every label value comes from a fixed set, so no client can create time series: `route` is the
matched URL rule (or "unmatched"), `method` one of METHODS (or "other"), `status` a 3-digit code,
`model` a served model's name, image `source` one of IMAGE_SOURCES and `outcome` "ok" or a status.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: HTTP methods counted by name; any other method is counted as "other".
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
#: Image source kinds (images.loader.source_kind); anything else is counted as "other".
IMAGE_SOURCES = frozenset({"upload", "data_uri", "url", "base64", "path"})

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter("embedding_requests_total", "HTTP requests by route, method and status.", ["route", "method", "status"])
REQUEST_SECONDS = Histogram(
    "embedding_request_duration_seconds", "Time from request to response, seconds.", ["route"], buckets=LATENCY_BUCKETS
)
QUEUE_SECONDS = Histogram(
    "embedding_queue_duration_seconds", "Time a request waited for its first forward pass, seconds.", ["model"],
    buckets=LATENCY_BUCKETS,
)
INFERENCE_SECONDS = Histogram(
    "embedding_inference_duration_seconds", "Duration of one forward pass, seconds.", ["model"], buckets=LATENCY_BUCKETS
)
BATCH_SIZE = Histogram(
    "embedding_batch_size", "Items per forward pass.", ["model"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
)
ITEMS = Counter("embedding_items_total", "Inputs, documents or images run through a model.", ["model"])
TOKENS = Counter("embedding_tokens_total", "Tokens fed to a model (special tokens included).", ["model"])
PADDED_TOKENS = Counter(
    "embedding_padded_tokens_total",
    "Tokens computed by a model's forward passes: items x longest per batch for a padded model, the real tokens "
    "for an unpadded one (÷ embedding_tokens_total: the padding paid).",
    ["model"],
)
QUEUE_DEPTH = Gauge("embedding_queue_depth", "Items waiting for a forward pass.", ["model"], multiprocess_mode="livesum")
IMAGES = Counter("embedding_images_total", "Images read, by source and outcome.", ["source", "outcome"])
LOAD_SECONDS = Gauge(
    "embedding_model_load_seconds", "Seconds a worker took to load and warm a model.", ["model"], multiprocess_mode="max"
)
READY_WORKERS = Gauge("embedding_ready_workers", "Workers that have loaded every model.", multiprocess_mode="livesum")
CACHE_LOOKUPS = Counter(
    "embedding_cache_lookups_total", "Texts looked up in the vector cache (VECTOR_CACHE), by result: hit or miss.",
    ["model", "result"],
)
CACHE_BYTES = Gauge(
    "embedding_cache_bytes", "Bytes the local vector caches hold (vectors, keys, entry overhead), summed over workers.",
    multiprocess_mode="livesum",
)
CACHE_ERRORS = Counter("embedding_cache_errors_total", "Vector cache reads or writes that failed (Redis): computed instead.")
RATE_LIMIT_STORAGE_ERRORS = Counter(
    "embedding_rate_limit_storage_errors",
    "Calls to the rate-limit storage (RATE_LIMIT_STORAGE_URI) that failed; see RATE_LIMIT_ON_STORAGE_ERROR.",
)


def method_label(method: str) -> str:
    """The `method` label: one of METHODS, else "other"."""
    return method if method in METHODS else "other"


def status_label(status) -> str:
    """The `status`/`outcome` label: a 3-digit HTTP status, else "other"."""
    try:
        code = int(status)
    except (TypeError, ValueError):
        return "other"
    return str(code) if 100 <= code <= 599 else "other"


#: Labelled children already looked up: (metric, label values) -> child. `labels()` costs a
#: lock and several calls per use; the label values are from fixed sets (module doc), so this stays
#: small.
_CHILDREN: dict[tuple, Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, looked up once per label values."""
    key = (metric, labels)
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN.setdefault(key, metric.labels(*labels))
    return found


class BatchObserver:
    """What the batchers report (see batching.Batcher.observer)."""

    def batch(self, model: str, items: int, tokens: int, padded_tokens: int, seconds: float) -> None:
        """One forward pass: its items, their `tokens` (lengths: tokens or image patches), the
        `padded_tokens` it computed, and its `seconds`."""
        child(BATCH_SIZE, model).observe(items)
        child(INFERENCE_SECONDS, model).observe(seconds)
        child(ITEMS, model).inc(items)
        child(TOKENS, model).inc(tokens)
        child(PADDED_TOKENS, model).inc(padded_tokens)

    def queued(self, model: str, depth: int) -> None:
        child(QUEUE_DEPTH, model).set(depth)

    def waited(self, model: str, seconds: float) -> None:
        child(QUEUE_SECONDS, model).observe(seconds)

    def cache(self, model: str, hits: int, misses: int, held_bytes: int) -> None:
        """One request's vector cache lookups, and the bytes the worker's local cache holds."""
        if hits:
            child(CACHE_LOOKUPS, model, "hit").inc(hits)
        if misses:
            child(CACHE_LOOKUPS, model, "miss").inc(misses)
        CACHE_BYTES.set(held_bytes)

    def cache_error(self) -> None:
        CACHE_ERRORS.inc()


class ImageObserver:
    """What the image loader reports: one call per image read, its `outcome` "ok" or the error's
    kind (`domain.errors`: invalid_input, not_allowed, limit_exceeded, unsupported_media,
    unprocessable, ...)."""

    #: The outcome label's values: "ok" and the kinds of the errors an image read can raise.
    OUTCOMES = frozenset({"ok", "invalid_input", "not_allowed", "not_found", "limit_exceeded", "unsupported_media",
                          "unprocessable", "unavailable", "internal_error"})

    def image(self, source: str, outcome: str) -> None:
        child(
            IMAGES, source if source in IMAGE_SOURCES else "other", outcome if outcome in self.OUTCOMES else "other"
        ).inc()


def engines_ready(engines) -> None:
    """A process finished loading `engines` (registry.Registry): record load times, count it ready."""
    for engine in engines.engines:
        LOAD_SECONDS.labels(engine.name).set(engine.load_seconds)
    READY_WORKERS.inc()


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """One request; `route` must be a URL rule or "unmatched" (app.install_request_hooks)."""
    child(REQUESTS, route, method_label(method), status_label(status)).inc()
    child(REQUEST_SECONDS, route).observe(seconds)


def render() -> tuple[bytes, str]:
    """The text exposition: every worker's values summed in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
