"""The TEI dialect against TEI's own published OpenAPI document (tests/contracts,
text-embeddings-inference 1.9.3): `/info` answers TEI's `Info` schema, for the default model and
for `?model=` (an embedder, a classifier, a reranker, a SPLADE model)."""

from __future__ import annotations

import copy
import json
import os

import jsonschema
import pytest

from conftest import app_from
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
    assert resp.status_code == 404 and "sentiment" in resp.get_json()["error"]["message"]
