"""The TEI dialect against TEI's own published OpenAPI document (tests/contracts,
text-embeddings-inference 1.9.3): `/info` answers TEI's `Info` schema, for the default model and
for `?model=` (an embedder, a classifier, a reranker, a SPLADE model); token-id inputs are taken
where TEI's `Input` takes them."""

from __future__ import annotations

import copy
import json
import os

import jsonschema
import numpy as np
import pytest

from conftest import app_from
from support.errors import expect_error
from support.paths import ROOT
from support.tiny_rerankers import build_bert_cross_encoder

DOCUMENT = os.path.join(ROOT, "tests", "contracts", "tei-openapi-1.9.3.json")


def tei_schema(name: str) -> dict:
    """TEI's component `name` as JSON Schema: its `$ref`s inlined and OpenAPI 3.0's `nullable` as a null type."""
    with open(DOCUMENT, encoding="utf-8") as handle:
        components = json.load(handle)["components"]["schemas"]

    def convert(node):
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return convert(copy.deepcopy(components[node["$ref"].rsplit("/", 1)[-1]]))
        out = {key: convert(value) for key, value in node.items() if key not in ("nullable", "example")}
        if node.get("nullable") and "type" in out:
            out["type"] = [out["type"], "null"]
        return out

    return convert(components[name])


@pytest.fixture(scope="module")
def tei_client(retrieval, tmp_path_factory):
    ce = build_bert_cross_encoder(str(tmp_path_factory.mktemp("tei-contract") / "ce"))
    return app_from({"MODELS": f"sentence-transformers/all-MiniLM-L6-v2,sentiment={retrieval['sentiment']},ce={ce},"
                               f"splade={retrieval['splade']}"}).test_client()


@pytest.mark.parametrize("query,model_type", [
    ("", {"embedding": {"pooling": "mean"}}),
    ("?model=sentiment", {"classifier": {"id2label": {"0": "negative", "1": "neutral", "2": "positive"},
                                         "label2id": {"negative": 0, "neutral": 1, "positive": 2}}}),
    ("?model=ce", {"reranker": {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}}),
    ("?model=splade", {"embedding": {"pooling": "splade"}}),
])
def test_info_answers_teis_info_schema(tei_client, query, model_type):
    info = tei_client.get("/info" + query).get_json()
    jsonschema.validate(info, tei_schema("Info"))
    assert info["model_type"] == model_type and info["served_model_name"] == info["model_id"]
    assert info["models"] and info["kind"]  # the service's own fields beside TEI's


def test_info_for_an_unknown_model_is_404(tei_client):
    resp = tei_client.get("/info?model=nope")
    expect_error(resp, 404, "model", "sentiment", style="tei")
    assert resp.get_json()["error_type"] == "Validation"


def test_token_id_inputs_are_accepted_where_tei_accepts_them(rt_client, rt_app):
    """TEI's `Input`: token ids for one input, or beside texts; fed as given, they give what the
    text they tokenise gives (/embed, /embed_all, /embed_sparse)."""
    reg = rt_app.extensions["embedding_service"].engines
    minilm = reg.find("sentence-transformers/all-MiniLM-L6-v2").model
    ids = list(minilm.tokenizer("a cat sits on the mat")["input_ids"])
    by_text = rt_client.post("/embed", json={"inputs": ["a cat sits on the mat", "paris"]}).get_json()
    one = rt_client.post("/embed", json={"inputs": ids}).get_json()
    mixed = rt_client.post("/embed", json={"inputs": [ids, "paris"]}).get_json()
    np.testing.assert_allclose(one[0], by_text[0], atol=1e-6)
    np.testing.assert_allclose(mixed[0], by_text[0], atol=1e-6)
    np.testing.assert_allclose(mixed[1], by_text[1], atol=1e-6)
    states = rt_client.post("/embed_all", json={"inputs": [ids]}).get_json()
    np.testing.assert_allclose(states[0], rt_client.post("/embed_all", json={"inputs": ["a cat sits on the mat"]}).get_json()[0],
                               atol=1e-5)
    m3 = reg.find("m3").model
    m3_ids = list(m3.tokenizer("a cat sits on the mat")["input_ids"])
    sparse = rt_client.post("/embed_sparse", json={"inputs": [m3_ids, "paris"], "model": "m3"}).get_json()
    assert sparse == rt_client.post("/embed_sparse", json={"inputs": ["a cat sits on the mat", "paris"], "model": "m3"}).get_json()
    bad = rt_client.post("/embed", json={"inputs": [10**9]})
    expect_error(bad, 400, "inputs", "outside the vocabulary", style="tei")


def test_teis_nullable_fields_take_null_as_the_default(tei_client):
    """TEI's schemas allow null for `truncate` (and `prompt_name`, `dimensions`): null means the default."""
    plain = tei_client.post("/embed", json={"inputs": "a cat"}).get_json()
    for body in ({"truncate": None}, {"prompt_name": None}, {"dimensions": None}, {"truncate": None, "prompt_name": None}):
        resp = tei_client.post("/embed", json={"inputs": "a cat", **body})
        assert resp.status_code == 200 and resp.get_json() == plain, (body, resp.get_json())
    ranked = tei_client.post("/rerank", json={"query": "a cat", "texts": ["a kitten", "a car"], "truncate": None})
    assert ranked.status_code == 200 and {"index", "score"} <= set(ranked.get_json()[0])  # TEI's answer: `truncate` is TEI's field
    long = tei_client.post("/predict", json={"inputs": "word " * 200, "model": "sentiment", "truncate": None})
    assert long.status_code == 200  # null: the default, truncation on


def test_predict_refusals_name_the_place(tei_client):
    for inputs, words in (([], "inputs must not be an empty list"), ([["a"], ["", "b"]], "inputs[1][0] is an empty string"),
                          ([["a", "b", "c"]], "inputs[0] has 3 texts")):
        resp = tei_client.post("/predict", json={"inputs": inputs, "model": "sentiment"})
        expect_error(resp, 400, "inputs", words, style="tei")
