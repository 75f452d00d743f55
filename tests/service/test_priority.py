"""Queue priorities at the HTTP edge: vLLM's `priority` field reaches the batcher, an API key's
priority is a floor, `/info` and `/metrics` show the padding paid, and bad values are refused."""

from __future__ import annotations

import pytest

from conftest import load_registry
from embedding_service.config.settings import Settings, SettingsError
from embedding_service.inference import jobs
from embedding_service.process.boot import local_app


@pytest.fixture(scope="module")
def registry():
    return load_registry(Settings.from_mapping({"LOG_LEVEL": "WARNING"}))


@pytest.fixture()
def seen(registry, monkeypatch):
    """The priority each batcher.run call saw."""
    priorities: list[int] = []
    batcher = registry.engines[0].batcher
    original = batcher.run

    def run(items, lengths=None):
        priorities.append(jobs.request_priority.get())
        return original(items, lengths)

    monkeypatch.setattr(batcher, "run", run)
    return priorities


def client_for(registry, **env):
    return local_app(Settings.from_mapping({"LOG_LEVEL": "WARNING", "DEVICE": "cpu", **env}), engines=registry).test_client()


def test_priority_field_reaches_the_batcher_and_resets_per_request(registry, seen):
    client = client_for(registry)
    assert client.post("/v1/embeddings", json={"input": "a", "priority": 7}).status_code == 200
    assert client.post("/v1/embeddings", json={"input": "a"}).status_code == 200
    assert client.post("/v1/embeddings", json={"input": "a", "priority": -3}).status_code == 200
    assert client.post("/v2/rerank", json={"query": "q", "documents": ["a"], "priority": 4}).status_code == 200
    assert client.post("/v2/embed", json={"texts": ["a"], "input_type": "search_query", "embedding_types": ["float"],
                                          "priority": 5}).status_code == 200
    assert seen == [7, 0, -3, 4, 5]


def test_an_api_keys_priority_is_a_floor(registry, seen):
    client = client_for(registry, API_KEYS="interactive,bulk;priority=10")
    bulk = {"Authorization": "Bearer bulk"}
    interactive = {"Authorization": "Bearer interactive"}
    assert client.post("/v1/embeddings", json={"input": "a"}, headers=bulk).status_code == 200
    assert client.post("/v1/embeddings", json={"input": "a", "priority": 0}, headers=bulk).status_code == 200
    assert client.post("/v1/embeddings", json={"input": "a", "priority": 20}, headers=bulk).status_code == 200
    assert client.post("/v1/embeddings", json={"input": "a"}, headers=interactive).status_code == 200
    assert client.post("/v1/embeddings", json={"input": "a"}, headers={"Authorization": "Bearer bulk;priority=10"}).status_code == 401
    assert seen == [10, 10, 20, 0]


@pytest.mark.parametrize("value", ["high", 1.5, True, None])
def test_a_priority_that_is_not_an_integer_is_refused(registry, seen, value):
    response = client_for(registry).post("/v1/embeddings", json={"input": "a", "priority": value})
    if value is None:
        assert response.status_code == 200  # null is the default, as vLLM's Optional field
        return
    assert response.status_code == 400
    assert response.get_json()["error"]["param"] == "priority"
    assert seen == []


@pytest.mark.parametrize("entry", ["k;prio=3", "k;priority=high", ";priority=1"])
def test_a_malformed_api_keys_entry_fails_at_start_up(entry):
    with pytest.raises(SettingsError, match="API_KEYS"):
        Settings.from_mapping({"API_KEYS": entry})


def test_info_and_metrics_report_real_and_padded_tokens(registry):
    client = client_for(registry)
    texts = ["short", "a much longer text " * 20, "mid length text here"]
    assert client.post("/v1/embeddings", json={"input": texts}).status_code == 200
    stats = client.get("/info").get_json()["batching"][registry.engines[0].name]
    assert stats["real_tokens"] > 0 and stats["padded_tokens"] >= stats["real_tokens"]
    assert stats["padding_ratio"] == round(stats["padded_tokens"] / stats["real_tokens"], 4)
    assert registry.engines[0].info()["unpadded"] is True
    assert stats["padding_ratio"] == 1.0  # unpadded MiniLM computes its real tokens only
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "embedding_padded_tokens_total{" in metrics
