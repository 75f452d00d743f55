"""Parity of the sparse and multi-vector outputs with the reference packages themselves, on tiny
random-weight models in the real repositories' layouts, in float32:

- SPLADE against sentence-transformers' `SparseEncoder.encode` (this venv);
- BGE-M3 against FlagEmbedding's `BGEM3FlagModel.encode` and `colbert_score`, and PyLate ColBERT
  against `pylate.models.ColBERT.encode` and `colbert_scores` (.venv-references: their pins clash
  with the service's);

and batch invariance of every new output (alone vs beside longer texts in one padded batch)."""

from __future__ import annotations

import numpy as np
import pytest

from support.references import run_reference

TEXTS = [
    "a cat sits on the mat", "paris is the capital of france", "deep learning is a subset of machine learning, "
    "and neural networks are inspired by the human brain", "今天天气很好", "search and retrieval!",
]
QUERIES = ["a cat", "what is the capital of china"]


def sparse_rows(client, model, texts, **extra):
    resp = client.post("/v1/sparse_embeddings", json={"input": texts, "model": model, **extra})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["data"]


def token_vectors(client, model, texts, input_type="document", **extra):
    resp = client.post("/pooling", json={"input": texts, "model": model, "task": "token_embed", "input_type": input_type, **extra})
    assert resp.status_code == 200, resp.get_json()
    return [np.asarray(item["data"], dtype=np.float64) for item in resp.get_json()["data"]]


def rowwise_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize("name", ["splade", "splade_sum"])
def test_splade_matches_sentence_transformers_sparse_encoder(rt_client, retrieval, name):
    from sentence_transformers import SparseEncoder

    reference = SparseEncoder(retrieval[name], device="cpu")
    for prompt_name, extra in ((None, {}), ("query", {"input_type": "query"})):
        expected = reference.encode(TEXTS, prompt_name=prompt_name, convert_to_tensor=True).to_dense().numpy()
        got = sparse_rows(rt_client, name.replace("_", "-"), TEXTS, **extra)
        for row, item in zip(expected, got):
            ids = np.flatnonzero(row)
            assert item["indices"] == ids.tolist()
            np.testing.assert_allclose(item["values"], row[ids], atol=1e-5, rtol=0)


def test_inference_free_splade_encodes_queries_by_static_weights_and_documents_by_the_masked_lm(rt_client, retrieval):
    from sentence_transformers import SparseEncoder

    reference = SparseEncoder(retrieval["splade_free"], device="cpu")
    queries = reference.encode_query(TEXTS, convert_to_tensor=True).to_dense().numpy()
    documents = reference.encode_document(TEXTS, convert_to_tensor=True).to_dense().numpy()
    for expected, extra in ((queries, {"input_type": "query"}), (documents, {}), (documents, {"input_type": "document"})):
        for row, item in zip(expected, sparse_rows(rt_client, "splade-free", TEXTS, **extra)):
            ids = np.flatnonzero(row)
            assert item["indices"] == ids.tolist()
            np.testing.assert_allclose(item["values"], row[ids], atol=1e-5, rtol=0)
    assert not np.allclose(queries, documents)  # the two routes differ


def test_bge_m3_matches_flagembedding(rt_client, retrieval):
    reference = run_reference("flagembedding", retrieval["m3"], "XLMRobertaTokenizerFast", TEXTS, QUERIES)
    # Dense: CLS, L2.
    resp = rt_client.post("/v1/embeddings", json={"input": TEXTS, "model": "m3"})
    dense = np.asarray([item["embedding"] for item in resp.get_json()["data"]])
    assert rowwise_cosine(dense, np.asarray(reference["dense"])).min() >= 0.99999
    # Lexical weights: the same ids, values within 1e-5, the same token strings.
    for item, weights, tokens in zip(sparse_rows(rt_client, "m3", TEXTS, return_tokens=True), reference["sparse"],
                                     reference["sparse_tokens"]):
        assert item["indices"] == sorted(int(k) for k in weights)
        np.testing.assert_allclose(item["values"], [weights[str(i)] for i in item["indices"]], atol=1e-5, rtol=0)
        assert item["tokens"] == [tokens[str(i)] for i in item["indices"]]
    # ColBERT: as many vectors, each at cosine >= 0.99999.
    for ours, theirs in zip(token_vectors(rt_client, "m3", TEXTS), reference["colbert"]):
        theirs = np.asarray(theirs)
        assert ours.shape == theirs.shape
        assert rowwise_cosine(ours, theirs).min() >= 0.99999
    # MaxSim in /rerank (raw): FlagEmbedding's colbert_score within 1e-5.
    for query, expected in zip(QUERIES, reference["colbert_score"]):
        resp = rt_client.post("/rerank", json={"query": query, "documents": TEXTS, "model": "m3", "raw_scores": True})
        assert resp.status_code == 200 and resp.get_json()["model"] == "m3 (MaxSim)"
        scores = {r["index"]: r["relevance_score"] for r in resp.get_json()["results"]}
        np.testing.assert_allclose([scores[i] for i in range(len(TEXTS))], expected, atol=1e-5, rtol=0)


def test_pylate_colbert_matches_pylate(rt_client, retrieval):
    reference = run_reference("pylate", retrieval["colbert"], "BertTokenizerFast", TEXTS, QUERIES)
    for input_type, texts, expected in (("document", TEXTS, reference["documents"]), ("query", QUERIES, reference["queries"])):
        for ours, theirs in zip(token_vectors(rt_client, "colbert", texts, input_type), expected):
            theirs = np.asarray(theirs)
            assert ours.shape == theirs.shape, (input_type, ours.shape, theirs.shape)
            assert rowwise_cosine(ours, theirs).min() >= 0.99999
    for query, expected in zip(QUERIES, reference["scores"]):
        resp = rt_client.post("/rerank", json={"query": query, "documents": TEXTS, "model": "colbert", "raw_scores": True})
        scores = {r["index"]: r["relevance_score"] for r in resp.get_json()["results"]}
        np.testing.assert_allclose([scores[i] for i in range(len(TEXTS))], expected, atol=1e-5, rtol=0)


LONG = "neural networks are inspired by the human brain and deep learning is a subset of machine learning " * 2


@pytest.mark.parametrize("model", ["splade", "m3"])
def test_sparse_vectors_are_batch_invariant(rt_client, model):
    alone = sparse_rows(rt_client, model, ["a cat"])[0]
    batched = sparse_rows(rt_client, model, [LONG, "a cat", LONG[:50]])[1]
    assert alone["indices"] == batched["indices"]
    np.testing.assert_allclose(alone["values"], batched["values"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("model,input_type", [("m3", "document"), ("colbert", "document"), ("colbert", "query")])
def test_token_vectors_are_batch_invariant(rt_client, model, input_type):
    alone = token_vectors(rt_client, model, ["a cat, on a mat"], input_type)[0]
    batched = token_vectors(rt_client, model, [LONG, "a cat, on a mat", LONG[:40]], input_type)[1]
    assert alone.shape == batched.shape
    assert np.abs(alone - batched).max() <= 1e-5


@pytest.mark.parametrize("name", ["splade", "splade-sum"])
def test_splade_pools_the_same_when_its_logits_are_computed_a_few_rows_at_a_time(rt_app, monkeypatch, name):
    """A real vocabulary (30,522 entries) takes 262 tokens' logits per slice; here 3 rows per slice
    split every input across slices, and the vectors stay the same."""
    from embedding_service.models import splade
    from embedding_service.models.prompts import PromptChoice

    model = rt_app.extensions["embedding_service"].engines.find(name).model
    items = model.prepare_texts(TEXTS, PromptChoice(), True, "right")
    whole = model.lexical_weights(items)
    monkeypatch.setattr(splade, "LOGIT_VALUES", 3 * model.sparse_dimension)
    for a, b in zip(whole, model.lexical_weights(items)):
        assert a.indices.tolist() == b.indices.tolist()
        np.testing.assert_allclose(a.values, b.values, atol=1e-5, rtol=1e-6)  # (a sum in another order)
