"""observability/metrics.py: what the batchers and the image loader report lands in the Prometheus
series the docs name, with bounded label values."""

from __future__ import annotations

from prometheus_client import REGISTRY

from embedding_service.observability.metrics import BatchObserver, ImageObserver, method_label, status_label


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_batch_counts_its_items_and_tokens():
    before = (value("embedding_items_total", model="unit-m"), value("embedding_tokens_total", model="unit-m"),
              value("embedding_padded_tokens_total", model="unit-m"))
    observer = BatchObserver()
    observer.batch("unit-m", 3, 41, 45, 0.02)
    observer.batch("unit-m", 2, 9, 10, 0.01)
    observer.queued("unit-m", 7)
    assert value("embedding_items_total", model="unit-m") - before[0] == 5
    assert value("embedding_tokens_total", model="unit-m") - before[1] == 50
    assert value("embedding_padded_tokens_total", model="unit-m") - before[2] == 55
    assert value("embedding_batch_size_count", model="unit-m") >= 2
    assert value("embedding_queue_depth", model="unit-m") == 7


def test_image_outcomes_are_the_error_kinds_and_nothing_else():
    observer = ImageObserver()
    before = {o: value("embedding_images_total", source="url", outcome=o) for o in ("ok", "limit_exceeded", "other")}
    observer.image("url", "ok")
    observer.image("url", "limit_exceeded")
    observer.image("url", "a made-up outcome")  # an unknown value is folded into "other"
    for outcome in before:
        assert value("embedding_images_total", source="url", outcome=outcome) - before[outcome] == 1
    observer.image("gopher", "ok")  # an unknown source likewise
    assert value("embedding_images_total", source="other", outcome="ok") >= 1


def test_labels_are_bounded():
    assert status_label(404) == "404" and status_label("abc") == "other" and status_label(99) == "other"
    assert method_label("GET") == "GET" and method_label("BREW") == "other"
