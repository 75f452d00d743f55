"""vLLM's `/pooling` with `task: token_classify`: a token classifier's label probabilities for
every token fed, against the recipe (transformers' AutoModelForTokenClassification, softmax per
token) and transformers' token-classification pipeline, on a tiny random-weight NER model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from support.errors import expect_error

TEXTS = ["Ada Lovelace worked in London", "a cat sits on the mat", "Paris"]


def pooled(client, **body) -> list[np.ndarray]:
    resp = client.post("/pooling", json=body)
    assert resp.status_code == 200, resp.get_json()
    return [np.asarray(row["data"], dtype=np.float64) for row in resp.get_json()["data"]]


@pytest.fixture(scope="module")
def reference(retrieval):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(retrieval["ner"])
    model = AutoModelForTokenClassification.from_pretrained(retrieval["ner"]).eval()
    return tokenizer, model


def test_token_classify_matches_the_recipe_and_the_pipeline(rt_client, reference):
    from transformers import pipeline

    tokenizer, model = reference
    ours = pooled(rt_client, input=TEXTS, task="token_classify", model="ner")
    raw = pooled(rt_client, input=TEXTS, model="ner", use_activation=False)  # a token classifier's default task
    tagger = pipeline("token-classification", model=model, tokenizer=tokenizer, ignore_labels=[])
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    for text, probs, logits in zip(TEXTS, ours, raw):
        inputs = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            expected_logits = model(**inputs).logits[0].numpy()
        assert probs.shape == (inputs["input_ids"].shape[1], len(labels))  # every token fed, [CLS] and [SEP] included
        np.testing.assert_allclose(logits, expected_logits, atol=1e-5)
        np.testing.assert_allclose(probs, torch.softmax(torch.from_numpy(expected_logits), -1).numpy(), atol=1e-5)
        entities = tagger(text)  # the pipeline's best label per word-piece (special tokens left out)
        assert [e["entity"] for e in entities] == [labels[i] for i in probs[1:-1].argmax(axis=1)]
        np.testing.assert_allclose([e["score"] for e in entities], probs[1:-1].max(axis=1), atol=1e-5)


def test_token_classify_is_batch_invariant_and_answers_vllms_shape(rt_client):
    together = pooled(rt_client, input=TEXTS, task="token_classify", model="ner")
    alone = [pooled(rt_client, input=text, task="token_classify", model="ner")[0] for text in TEXTS]
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a, b, atol=1e-5)
    body = rt_client.post("/pooling", json={"input": "Paris", "task": "token_classify"}).get_json()  # the first token classifier
    assert body["model"] == "ner" and body["object"] == "list" and body["data"][0]["object"] == "pooling"
    assert body["usage"]["prompt_tokens"] == len(body["data"][0]["data"])


def test_token_classify_refusals_speak_vllms_body(rt_client):
    wrong = rt_client.post("/pooling", json={"input": "a", "task": "token_classify", "model": "sentiment"})
    expect_error(wrong, 400, "model", "token classification", style="nested")
    assert wrong.get_json()["error"]["type"] == "BadRequestError"
    unknown = rt_client.post("/pooling", json={"input": "a", "task": "tag"})
    expect_error(unknown, 400, "task", "token_classify", style="nested")
    long = rt_client.post("/pooling", json={"input": "word " * 200, "task": "token_classify", "model": "ner",
                                            "truncate_prompt_tokens": -1})
    assert long.status_code == 200 and len(long.get_json()["data"][0]["data"]) == 64  # cut to the window
    info = rt_client.get("/info?model=ner").get_json()
    assert info["model_type"]["classifier"]["id2label"]["3"] == "B-PER"  # TEI's nearest type: a classifier
    ner = next(m for m in rt_client.get("/v1/models").get_json()["data"] if m["id"] == "ner")
    assert ner["kind"] == "token-classifier"


def test_the_output_budget_counts_labels_per_token(retrieval):
    from conftest import app_from

    small = app_from({"MODELS": f"ner={retrieval['ner']}", "MAX_TOKEN_VECTOR_VALUES": "500"}).test_client()
    ok = small.post("/pooling", json={"input": "a", "task": "token_classify"})
    assert ok.status_code == 200, ok.get_json()
    over = small.post("/pooling", json={"input": ["word " * 60] * 2, "task": "token_classify"})  # 2 x 64 tokens x 9 labels
    expect_error(over, 413, "input", "MAX_TOKEN_VECTOR_VALUES", style="nested")


def test_a_token_classifier_gives_no_pooled_vectors_anywhere(rt_client, rt_app):
    """No route that wants pooled vectors reaches a token classifier's (refusing) `forward`."""
    engine = rt_app.extensions["embedding_service"].engines.find("ner")
    from embedding_service.domain.errors import InvalidInput

    with pytest.raises(InvalidInput, match="gives no pooled vectors"):
        engine.model.forward(engine.model.prepare_inputs(["a"], True, "right"))
    for path, body in (("/v1/embeddings", {"input": "a", "model": "ner"}), ("/embed", {"inputs": "a", "model": "ner"}),
                       ("/pooling", {"input": "a", "model": "ner", "task": "embed"}),
                       ("/rerank", {"query": "a", "documents": ["b"], "model": "ner"})):
        resp = rt_client.post(path, json=body)
        assert resp.status_code == 400 and "ner" in resp.get_data(as_text=True), (path, resp.get_json())
