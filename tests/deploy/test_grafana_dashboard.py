"""The Grafana dashboard (deploy/grafana/embedding-service.json) queries only what the service
exports: every metric in its PromQL is a sample name of a family in /metrics, and every label it
filters or groups by is one of that family's labels."""

from __future__ import annotations

import json
import os
import re

from conftest import app_from
from support.paths import ROOT
from support.texts import MINILM

DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "embedding-service.json")
METRIC = re.compile(r"\b(embedding_[a-z_]+)")
#: `name{label op "value"}` selectors and `by (labels)` groupings.
SELECTOR = re.compile(r"(embedding_[a-z_]+)\{([^}]*)\}")
GROUPING = re.compile(r"by \(([^)]*)\)\s*\((?:rate|irate|increase)?\(?\s*(embedding_[a-z_]+)")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count")}


def exported(text: str) -> dict[str, str]:
    """Sample name -> its family (prometheus_client's name: a counter's without `_total`), from
    /metrics' `# TYPE` lines (the text format names a counter's family with its `_total`)."""
    names = {}
    for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        base = family[: -len("_total")] if kind == "counter" and family.endswith("_total") else family
        for suffix in SUFFIXES.get(kind, ("",)):
            names[family + suffix] = base
    return names


def family_labels() -> dict[str, set[str]]:
    """Family -> its label names, from the metric objects themselves (a family with no sample yet
    shows no labels in /metrics)."""
    from embedding_service.observability import metrics

    found = {}
    for value in vars(metrics).values():
        name = getattr(value, "_name", None)
        if name is not None and hasattr(value, "_labelnames"):
            found[name] = set(value._labelnames) | ({"le"} if type(value).__name__ == "Histogram" else set())
    return found


def test_every_metric_and_label_the_dashboard_queries_is_exported():
    client = app_from({"MODEL_NAME": MINILM, "VECTOR_CACHE": "local"}).test_client()
    assert client.post("/v1/embeddings", json={"input": ["a cat", "a cat"]}).status_code == 200  # samples in most families
    names = exported(client.get("/metrics").get_data(as_text=True))
    labels = family_labels()
    with open(DASHBOARD, encoding="utf-8") as handle:
        dashboard = json.load(handle)
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(exprs) >= 12 and dashboard["templating"]["list"][0]["type"] == "datasource"
    queried = set()
    for expr in exprs:
        for metric in METRIC.findall(expr):
            assert metric in names, f"{metric} (in {expr!r}) is not exported by /metrics"
            queried.add(names[metric])
        for metric, matchers in SELECTOR.findall(expr):
            used = {m.split("=")[0].split("!")[0].strip() for m in matchers.split(",") if m.strip()}
            assert used <= labels[names[metric]], (expr, used, labels[names[metric]])
        for grouped, metric in GROUPING.findall(expr):
            used = {label.strip() for label in grouped.split(",")}
            assert used <= labels[names[metric]], (expr, used, labels[names[metric]])
    # what an operator watches: request rate, latency, queue depth, batch sizes, cache hits, rate-limit refusals
    assert {"embedding_requests", "embedding_request_duration_seconds", "embedding_queue_depth", "embedding_batch_size",
            "embedding_cache_lookups", "embedding_rate_limit_storage_errors"} <= queried
    assert any('status="429"' in expr for expr in exprs)
