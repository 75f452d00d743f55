"""Classification and scoring as clients see them: TEI's `/predict` (one text, a pair, a batch;
the Inference API's `parameters`; `POST /` for a classifier; huggingface_hub's InferenceClient),
vLLM's and Infinity's `/classify`, vLLM's `/pooling` classify and `/score`: shapes and errors."""

from __future__ import annotations

import numpy as np
import pytest

from support.errors import expect_error as error
from conftest import serve


def test_predict_reads_inputs_as_tei_does(rt_client):
    single = rt_client.post("/predict", json={"inputs": "a cat", "model": "sentiment"}).get_json()
    assert [r["label"] for r in single] and {r["label"] for r in single} == {"negative", "neutral", "positive"}
    pair = rt_client.post("/predict", json={"inputs": ["a cat", "a kitten"], "model": "sentiment"}).get_json()
    assert isinstance(pair[0], dict)  # two strings: one pair, one answer
    batch = rt_client.post("/predict", json={"inputs": [["a cat"], ["a cat", "a kitten"], ["x"]], "model": "sentiment"}).get_json()
    assert len(batch) == 3 and batch[0] == single and batch[1] == pair
    three = rt_client.post("/predict", json={"inputs": ["a cat", "b", "c"], "model": "sentiment"}).get_json()
    assert len(three) == 3 and three[0] == single  # three strings: a batch of texts
    top = rt_client.post("/predict", json={"inputs": "a cat", "model": "sentiment", "parameters": {"top_k": 1}}).get_json()
    assert top == single[:1]
    raw = rt_client.post("/predict", json={"inputs": "a cat", "model": "sentiment", "parameters": {"function_to_apply": "none"}})
    assert raw.get_json() == rt_client.post("/predict", json={"inputs": "a cat", "model": "sentiment", "raw_scores": True}).get_json()


def test_predict_errors_name_the_field(rt_client):
    error(rt_client.post("/predict", json={"inputs": "a", "model": "sentence-transformers/all-MiniLM-L6-v2"}), 400, "model",
          "cannot do classification")
    error(rt_client.post("/predict", json={"inputs": [["a", "b", "c"]], "model": "sentiment"}), 400, "inputs")
    error(rt_client.post("/predict", json={"inputs": "a", "model": "nope"}), 404, "model", "sentiment")
    error(rt_client.post("/predict", json={"inputs": "word " * 200, "model": "sentiment", "truncate": False}), 422, "inputs",
          "at most 64")


def test_classify_answers_vllm_or_infinity_by_the_request(rt_client):
    vllm = rt_client.post("/v1/classify", json={"input": ["a cat", "b"], "model": "sentiment"}).get_json()
    assert vllm["object"] == "list" and vllm["id"].startswith("classify-") and vllm["usage"]["completion_tokens"] == 0
    item = vllm["data"][0]
    assert item["num_classes"] == 3 and item["index"] == 0 and abs(sum(item["probs"]) - 1) < 1e-6
    assert item["label"] == ["negative", "neutral", "positive"][int(np.argmax(item["probs"]))]
    infinity = rt_client.post("/classify", json={"input": ["a cat"], "model": "sentiment", "raw_scores": False}).get_json()
    assert infinity["object"] == "classify" and infinity["id"].startswith("infinity-")
    ranked = infinity["data"][0]
    assert {r["label"]: r["score"] for r in ranked} == pytest.approx(dict(zip(["negative", "neutral", "positive"], item["probs"])))
    pooled = rt_client.post("/pooling", json={"input": "a cat", "model": "sentiment"}).get_json()
    np.testing.assert_allclose(pooled["data"][0]["data"], item["probs"], atol=1e-6)
    error(rt_client.post("/classify", json={"input": "a", "model": "m3"}), 400, "model", "classification")


def test_score_validates_its_lists(rt_client):
    error(rt_client.post("/score", json={"text_1": ["a", "b", "c"], "text_2": ["x", "y"]}), 400, "text_1", "one text")
    many = rt_client.post("/score", json={"text_1": ["a", "b"], "text_2": "a"}).get_json()["data"]  # many against one
    assert len(many) == 2 and many[0]["score"] == pytest.approx(1.0, abs=1e-5)
    resp = rt_client.post("/score", json={"text_1": "a", "documents": ["b"]})
    assert resp.status_code == 400 and "text_1 and text_2, or queries and documents" in resp.get_json()["error"]["message"]
    error(rt_client.post("/score", json={"text_1": "a", "text_2": ["b"], "model": "sentiment"}), 400, "model", "reranking")


@pytest.fixture(scope="module")
def classifier_url(retrieval):
    """A server whose only model is the three-label classifier (TEI serves one model)."""
    from conftest import app_from

    url, server = serve(app_from({"MODELS": f"sentiment={retrieval['sentiment']}"}))
    yield url
    server.shutdown()


def test_huggingface_hub_text_classification_works_against_predict_and_the_root_route(classifier_url, monkeypatch):
    import requests
    from huggingface_hub import InferenceClient, constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the tests run offline; this is loopback
    expected = requests.post(f"{classifier_url}/predict", json={"inputs": "a cat sits"}, timeout=30).json()
    assert len(expected) == 3
    for target in (f"{classifier_url}/predict", classifier_url):  # /predict, and TEI's root route for a classifier
        out = InferenceClient(model=target).text_classification("a cat sits")
        # TEI answers one input with a flat list; the client keeps its first entry, the best label.
        first = out[0] if isinstance(out, list) else out
        assert (first.label, first.score) == (expected[0]["label"], pytest.approx(expected[0]["score"], abs=1e-9))


def test_rerank_takes_vllms_fields_and_answers_vllm_and_jinas_usage(rt_client):
    body = {"query": "a cat", "documents": ["a kitten", "stocks"], "model": "m3", "truncate_prompt_tokens": -1}
    answer = rt_client.post("/v1/rerank", json=body).get_json()
    assert answer["usage"]["prompt_tokens"] == answer["usage"]["total_tokens"] == answer["meta"]["tokens"]["input_tokens"] > 0
    assert answer["model"] == "m3 (MaxSim)" and len(answer["results"]) == 2
    error(rt_client.post("/v1/rerank", json={**body, "truncate_prompt_tokens": 5}), 400, "truncate_prompt_tokens")
