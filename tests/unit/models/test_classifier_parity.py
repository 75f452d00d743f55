"""Classifiers against transformers' text-classification pipeline (`top_k=None`), and vLLM's
`/score` against each scorer's reference: sentence-transformers' `CrossEncoder.predict` (a
cross-encoder), the cosine of `SentenceTransformer.encode` vectors (a bi-encoder, the real MiniLM)
and FlagEmbedding's `colbert_score` (BGE-M3); all in float32 on tiny random-weight models (MiniLM
real)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import app_from
from support.references import run_reference
from support.tiny_rerankers import build_bert_cross_encoder

TEXTS = ["a cat sits on the mat", "the stock market fell sharply today", "今天天气很好", "what is the capital of china"]
PAIRS = [("a cat sits on the mat", "a kitten rests on a rug"), ("paris is the capital of france", "the weather is nice")]


def pipeline_scores(path, inputs):
    from transformers import pipeline

    classifier = pipeline("text-classification", model=path, tokenizer=path, top_k=None, device="cpu")
    return [{row["label"]: row["score"] for row in result} for result in classifier(inputs)]


@pytest.mark.parametrize("name", ["sentiment", "emotions"])
def test_classifiers_match_the_text_classification_pipeline(rt_client, retrieval, name):
    expected = pipeline_scores(retrieval[name], TEXTS)
    got = rt_client.post("/predict", json={"inputs": [[t] for t in TEXTS], "model": name}).get_json()
    for ours, theirs in zip(got, expected):
        assert [r["score"] for r in ours] == sorted((r["score"] for r in ours), reverse=True)
        assert {r["label"]: r["score"] for r in ours} == pytest.approx(theirs, abs=1e-5)
    # Pairs (NLI): the pipeline's {"text", "text_pair"}.
    expected = pipeline_scores(retrieval[name], [{"text": a, "text_pair": b} for a, b in PAIRS])
    got = rt_client.post("/predict", json={"inputs": [list(p) for p in PAIRS], "model": name}).get_json()
    for ours, theirs in zip(got, expected):
        assert {r["label"]: r["score"] for r in ours} == pytest.approx(theirs, abs=1e-5)


def test_raw_scores_are_the_logits_and_the_multi_label_model_is_not_softmaxed(rt_client, rt_app):
    import torch

    for name in ("sentiment", "emotions"):
        model = rt_app.extensions["embedding_service"].engines.find(name).model
        with torch.no_grad():
            logits = model.model(**model.tokenizer(["a cat"], return_tensors="pt")).logits[0].numpy()
        raw = rt_client.post("/predict", json={"inputs": "a cat", "model": name, "raw_scores": True}).get_json()
        assert {r["label"]: r["score"] for r in raw} == pytest.approx(dict(zip(model.labels, logits.tolist())), abs=1e-5)
    probs = rt_client.post("/predict", json={"inputs": "a cat", "model": "emotions"}).get_json()
    assert abs(sum(r["score"] for r in probs) - 1.0) > 1e-3  # sigmoid per label


def test_classification_is_batch_invariant(rt_client):
    alone = rt_client.post("/classify", json={"input": ["a cat"], "model": "sentiment"}).get_json()["data"][0]["probs"]
    long = "neural networks are inspired by the human brain " * 5
    batched = rt_client.post("/classify", json={"input": [long, "a cat", long[:30]], "model": "sentiment"}).get_json()
    np.testing.assert_allclose(batched["data"][1]["probs"], alone, atol=1e-6)


@pytest.fixture(scope="module")
def scorers(tmp_path_factory, minilm_path, retrieval):
    ce = build_bert_cross_encoder(str(tmp_path_factory.mktemp("score") / "ce"))
    app = app_from({"MODELS": f"sentence-transformers/all-MiniLM-L6-v2,ce={ce},m3={retrieval['m3']}"})
    return app.test_client(), ce


def scores(client, **body):
    resp = client.post("/score", json=body)
    assert resp.status_code == 200, resp.get_json()
    data = resp.get_json()
    assert data["object"] == "list" and data["id"].startswith("score-") and data["usage"]["prompt_tokens"] > 0
    assert [d["index"] for d in data["data"]] == list(range(len(data["data"]))) and all(d["object"] == "score" for d in data["data"])
    return [d["score"] for d in data["data"]]


def test_score_matches_cross_encoder_predict_bi_encoder_cosine_and_colbert_score(scorers, minilm_path, retrieval):
    from sentence_transformers import CrossEncoder, SentenceTransformer

    client, ce = scorers
    query, documents = "a cat sits on the mat", ["a kitten rests on a rug", "the stock market fell", "paris"]
    expected = CrossEncoder(ce, device="cpu").predict([(query, d) for d in documents])
    np.testing.assert_allclose(scores(client, model="ce", text_1=query, text_2=documents), expected, atol=1e-5)
    # Zipped lists, queries/documents spelling: each pair scored as itself.
    zipped = scores(client, model="ce", queries=[query, "paris"], documents=[documents[0], documents[2]])
    expected = CrossEncoder(ce, device="cpu").predict([(query, documents[0]), ("paris", documents[2])])
    np.testing.assert_allclose(zipped, expected, atol=1e-5)
    # Bi-encoder: the cosine of the reference vectors.
    vectors = SentenceTransformer(minilm_path, device="cpu").encode([query, *documents], normalize_embeddings=True)
    np.testing.assert_allclose(scores(client, model="sentence-transformers/all-MiniLM-L6-v2", text_1=query, text_2=documents),
                               vectors[1:] @ vectors[0], atol=1e-5)
    # Multi-vector: FlagEmbedding's colbert_score.
    reference = run_reference("flagembedding", retrieval["m3"], "XLMRobertaTokenizerFast", documents, [query])
    np.testing.assert_allclose(scores(client, model="m3", text_1=query, text_2=documents), reference["colbert_score"][0],
                               atol=1e-5)
