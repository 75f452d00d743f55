"""Every route of the app's URL map, walked: each declares its budget (http/budgets.py), and for
each this test sends the largest request the declared budgets admit (served: 200) and one just
over each budget: 413 naming the budget and its setting, in the route's error shape, before any
tokenising or forward pass (counted on the tokenizer and on torch modules, not timed). A route
added later is walked the same way without touching this file.

Budgets are small here (8 items, 300 characters per input, 1,200 per request, 1,000 tokens
returned) so that the largest requests are quick; `test_route_budgets_memory.py` sends the
largest requests of the default budgets to a real server."""

from __future__ import annotations

import json

import pytest
import torch

from embedding_service.config.settings import Settings
from embedding_service.http.budgets import NO_ITEMS, body_limit
from embedding_service.http.errors import ErrorStyle
from support.errors import error_message, error_style
from embedding_service.models.tokenize import ConcurrentTokenizer
from embedding_service.process.boot import local_app
from support.budget_walk import fill, largest, path_of
from transformers import PreTrainedTokenizerBase

LIMITS = {
    "MAX_CLIENT_BATCH_SIZE": 8, "MAX_INPUT_CHARS": 300, "MAX_REQUEST_CHARS": 1200, "MAX_RESPONSE_TOKENS": 1000,
    "MAX_EMBED_ALL_TOKENS": 1000, "MAX_CONTENT_LENGTH": 4 * 1024 * 1024, "MAX_SPARSE_ENTRIES": 400,
    "MAX_TOKEN_VECTOR_VALUES": 12000,
}
#: The model a route that needs sparse or multi-vector output, or a classifier, is walked with (Budget.capability).
CAPABILITY_MODELS = {"sparse": "m3", "multi-vector": "m3", "classifier": "sentiment"}
@pytest.fixture(scope="module")
def walked(tiny, retrieval):
    """An app serving MiniLM (WordPiece), the tiny Qwen3 embedder (byte-level BPE) and the tiny
    BGE-M3 and classifier (for the sparse, multi-vector and classification routes) with small
    budgets, and its routes:
    `(rule, method, view)`."""
    app = local_app(Settings.from_mapping({
        "MODELS": f"sentence-transformers/all-MiniLM-L6-v2,qwen={tiny['qwen']},m3={retrieval['m3']},"
                  f"sentiment={retrieval['sentiment']}", "DEVICE": "cpu",
        "LOG_LEVEL": "WARNING", "MAX_BATCH_SIZE": "8", **{k: str(v) for k, v in LIMITS.items()},
    }))
    routes = [
        (rule, method, app.view_functions[rule.endpoint])
        for rule in app.url_map.iter_rules() for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    ]
    return app, routes


@pytest.fixture()
def work(monkeypatch):
    """Counts tokenizer calls (ours and transformers') and torch module calls."""
    calls = {"tokenize": 0, "forward": 0}

    def counted(owner, name, kind):
        inner = getattr(owner, name)

        def wrapper(*args, **kwargs):
            calls[kind] += 1
            return inner(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    for name in ("__call__", "encode_ids", "windows"):
        counted(ConcurrentTokenizer, name, "tokenize")
    for name in ("__call__", "batch_decode", "decode", "encode"):
        counted(PreTrainedTokenizerBase, name, "tokenize")
    counted(torch.nn.Module, "__call__", "forward")
    return calls


def post(client, path, body, pad_to=None):
    data = json.dumps(body).encode()
    if pad_to is not None:
        assert len(data) <= pad_to
        data += b" " * (pad_to - len(data))
    return client.post(path, data=data, content_type="application/json")


def refused(resp, operation, work, *words):
    """A 413 holding `words` in the error body of the route's style (one of its styles on a
    shared path), before any tokenising or forward pass."""
    assert resp.status_code == 413, (resp.status_code, resp.get_data(as_text=True)[:300])
    styles = {operation.error_style, *getattr(operation, "error_styles", ())}
    assert error_style(resp.get_json()) in {SHAPE_OF[style] for style in styles}, resp.get_json()
    text = error_message(resp)
    assert all(word in text for word in words), text
    assert work == {"tokenize": 0, "forward": 0}, text


MODELS = ["sentence-transformers/all-MiniLM-L6-v2", "qwen"]


def test_every_route_declares_a_budget(walked):
    _, routes = walked
    posts = [(rule.rule, view.operation.budget) for rule, method, view in routes if method == "POST"]
    assert len(posts) >= 17 and all(budget is not None for _, budget in posts)
    assert {rule for rule, budget in posts if budget.item is None} == {"/api/show"}
    for rule, method, view in routes:
        if method == "GET":
            assert getattr(getattr(view, "operation", None), "budget", NO_ITEMS) == NO_ITEMS, rule.rule


@pytest.mark.parametrize("model", MODELS)
def test_every_route_serves_its_largest_request_and_refuses_each_budget_before_work(walked, work, model):
    app, routes = walked
    client = app.test_client()
    state = app.extensions["embedding_service"]
    walked_posts = 0
    for rule, method, view in routes:
        path = path_of(rule)
        operation = getattr(view, "operation", None)
        budget = operation.budget if operation is not None else NO_ITEMS
        limit, how = body_limit(budget.body, LIMITS["MAX_CONTENT_LENGTH"], LIMITS["MAX_REQUEST_CHARS"])
        if method == "GET" or budget.item is None:
            # No items: bounded by the body budget alone.
            resp = client.open(path, method=method, data=b" " * (limit + 1), content_type="application/json")
            refused(resp, operation or NO_ITEMS_OPERATION, work, str(limit), "bytes")
            continue
        walked_posts += 1
        route_model = CAPABILITY_MODELS.get(budget.capability, model)
        body, count, size = largest(budget, state.settings, state.engines, route_model)
        # At the budgets: served, padded to the last byte the route takes.
        resp = post(client, path, body, pad_to=limit)
        assert resp.status_code == 200, (path, resp.get_data(as_text=True)[:300])
        assert work["tokenize"] > 0, path
        work.update(tokenize=0, forward=0)
        # One byte over the body budget.
        refused(post(client, path, body, pad_to=limit + 1), operation, work, f"request body is larger than {how}")
        unit = [7] if budget.item == "ids" else "a"
        if count > 1:
            # One item over MAX_CLIENT_BATCH_SIZE.
            over = dict(fill(budget.example, [unit] * (count + 1)), model=route_model)  # (the example's extra items too)
            refused(post(client, path, over), operation, work, "MAX_CLIENT_BATCH_SIZE")
            # Within MAX_INPUT_CHARS each, over MAX_REQUEST_CHARS together.
            each = LIMITS["MAX_REQUEST_CHARS"] // count + 1
            item = [7] * each if budget.item == "ids" else "a" * each
            over = dict(fill(budget.example, [item] * count), model=route_model)
            # (where the output budget is the smaller one, it is the one passed)
            first = budget.item == "text" and budget.output is not None and budget.output.bound(over, state.engines) > getattr(
                state.settings, budget.output.setting)
            refused(post(client, path, over), operation, work,
                    budget.output.setting.upper() if first else "MAX_REQUEST_CHARS")
        # One input over MAX_INPUT_CHARS.
        item = [7] * (LIMITS["MAX_INPUT_CHARS"] + 1) if budget.item == "ids" else "a" * (LIMITS["MAX_INPUT_CHARS"] + 1)
        refused(post(client, path, dict(fill(budget.example, [item]), model=route_model)), operation, work, "MAX_INPUT_CHARS")
        if budget.output is not None:
            # Within every input budget, over the output budget: 4-byte characters (or more ids).
            setting = budget.output.setting.upper()
            if budget.item == "ids":
                rows = [[7] * 250] * 4 + [[7] * 1]  # 1,001 ids
            else:
                rows = ["\U0001f600" * 140] * count  # 8 x 564 bytes
            over = dict(fill(budget.example, rows), model=route_model)
            assert budget.output.bound(over, state.engines) > getattr(state.settings, budget.output.setting)
            refused(post(client, path, over), operation, work, setting)
    assert walked_posts >= 16


#: The test helpers' name for each error style's body shape.
SHAPE_OF = {ErrorStyle.NESTED: "nested", ErrorStyle.VLLM: "nested", ErrorStyle.FLAT: "flat",
            ErrorStyle.TEI: "tei", ErrorStyle.COHERE: "cohere"}


class _NoOperation:
    error_style = ErrorStyle.NESTED


class _TEIOperation:
    error_style = ErrorStyle.TEI  # /tokenize and /embed_all are TEI's


NO_ITEMS_OPERATION, TEI_OPERATION = _NoOperation(), _TEIOperation()


def test_an_input_within_every_budget_but_the_output_one_is_refused_by_name(walked, work):
    app, _ = walked
    client = app.test_client()
    resp = client.post("/tokenize", json={"inputs": ["\U0001f600" * 300] * 2})  # 600 characters, 2,408 tokens at most
    refused(resp, TEI_OPERATION, work, "inputs may make up to 2408 tokens", "at most 1000", "MAX_RESPONSE_TOKENS")
    texts = ["\U0001f600" * 300] * 3  # 3 x 1,204 tokens at most
    resp = client.post("/embed_all", json={"inputs": texts, "truncate": False})
    refused(resp, TEI_OPERATION, work, "inputs may make up to 3612 tokens", "MAX_EMBED_ALL_TOKENS")
    # With truncate on, each input gives at most the model's window (MiniLM: 256 tokens): 768.
    assert client.post("/embed_all", json={"inputs": texts}).status_code == 200
    assert work["forward"] > 0
