"""Cheap before expensive: a body whose lists or values exceed the budgets is refused with 413 on
orjson's parse alone, before any schema validation, tokenisation or forward pass (counted, not
timed). Token ids count like characters: MAX_INPUT_CHARS per list of ids, MAX_REQUEST_CHARS over
the whole body, which also bounds object members (documents with thousands of extra keys)."""

from __future__ import annotations

import pytest
from support.errors import expect_error, error_message

from conftest import load_registry
from embedding_service.config.settings import Settings
from embedding_service.http import schemas, shared_paths
from embedding_service.http.dialects.openai import routes as openai_routes
from embedding_service.http.dialects.tei import routes as tei_routes
from embedding_service.process.boot import local_app


@pytest.fixture(scope="module")
def registry():
    return load_registry(Settings.from_mapping({"LOG_LEVEL": "WARNING"}))


@pytest.fixture()
def counted(registry, monkeypatch):
    """An app with small budgets; counts schema validations, tokenising and forward passes."""
    calls = {"parse": 0, "prepare": 0, "forward": 0}
    model = registry.first.model

    def counting(name, inner):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return inner(*args, **kwargs)
        return wrapper

    for module in (openai_routes, tei_routes, shared_paths):
        monkeypatch.setattr(module, "parse", counting("parse", schemas.parse))
    monkeypatch.setattr(model, "prepare_ids", counting("prepare", model.prepare_ids))
    monkeypatch.setattr(model, "prepare_texts", counting("prepare", model.prepare_texts))
    monkeypatch.setattr(model, "forward", counting("forward", model.forward))
    app = local_app(Settings.from_mapping({
        "LOG_LEVEL": "WARNING", "DEVICE": "cpu", "MAX_CLIENT_BATCH_SIZE": "64", "MAX_INPUT_CHARS": "1000",
        "MAX_REQUEST_CHARS": "20000",
    }), engines=registry)
    return app.test_client(), calls


def refused(resp, param, *words):
    """A 413 naming `param` and holding `words`, in the route's dialect's error body."""
    return expect_error(resp, 413, param, *words)


def test_a_long_token_id_list_is_refused_before_it_is_validated(counted):
    client, calls = counted
    refused(client.post("/v1/embeddings", json={"input": [5] * 1001}), "input", "1001 token ids", "MAX_INPUT_CHARS")
    refused(client.post("/v1/embeddings", json={"input": [[5] * 10, [5] * 1001]}), "input", "input[1]", "MAX_INPUT_CHARS")
    refused(client.post("/decode", json={"ids": [5] * 1001}), "ids", "MAX_INPUT_CHARS")
    refused(client.post("/decode", json={"ids": [[5] * 900] * 23}), "ids", "MAX_REQUEST_CHARS")  # 20,700 ids in all
    assert calls == {"parse": 0, "prepare": 0, "forward": 0}
    assert client.post("/v1/embeddings", json={"input": [5] * 1000}).status_code == 200  # at the budget: served
    assert calls["parse"] == 1 and calls["forward"] == 1


def test_too_many_items_or_members_are_refused_before_validation(counted):
    client, calls = counted
    refused(client.post("/rerank", json={"query": "q", "documents": [{"text": "a"}] * 65}), "documents",
            "65 items", "MAX_CLIENT_BATCH_SIZE")
    refused(client.post("/embed", json={"inputs": ["a"] * 65}), "inputs", "MAX_CLIENT_BATCH_SIZE")
    extra = {f"k{i}": i for i in range(500)}
    refused(client.post("/rerank", json={"query": "q", "documents": [{"text": "a", **extra}] * 50}), "documents",
            "MAX_REQUEST_CHARS")  # 50 documents x 501 members
    assert calls == {"parse": 0, "prepare": 0, "forward": 0}
    ok = client.post("/rerank", json={"query": "q", "documents": [{"text": "a", "id": 1}] * 64, "return_documents": True})
    assert ok.status_code == 200 and len(ok.get_json()["results"]) == 64
