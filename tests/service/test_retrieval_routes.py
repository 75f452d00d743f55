"""The retrieval routes as clients see them: TEI's `/embed_sparse`, the service's
`/v1/sparse_embeddings`, vLLM's `/pooling` (`embed`, `token_embed`), MaxSim in `/rerank`; their
errors, their output budgets (413 before any forward pass), and the default DTYPE's distance to
float32."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from support.errors import expect_error as error
from conftest import app_from


def test_tei_embed_sparse_gives_the_native_vectors_as_index_value_pairs(rt_client):
    texts = ["a cat sits on the mat", "paris"]
    tei = rt_client.post("/embed_sparse", json={"inputs": texts, "model": "m3"})
    native = rt_client.post("/v1/sparse_embeddings", json={"input": texts, "model": "m3"}).get_json()
    assert tei.status_code == 200 and tei.mimetype == "application/json"
    for pairs, item in zip(tei.get_json(), native["data"]):
        assert [p["index"] for p in pairs] == item["indices"] and item["indices"] == sorted(item["indices"])
        assert [p["value"] for p in pairs] == item["values"] and all(v > 0 for v in item["values"])
    assert native["object"] == "list" and native["model"] == "m3" and native["usage"]["prompt_tokens"] > 0
    assert "tokens" not in native["data"][0]
    # A single string is one input; the default sparse model is the first served (SPLADE here).
    single = rt_client.post("/embed_sparse", json={"inputs": "a cat"})
    assert single.status_code == 200 and len(single.get_json()) == 1


def test_sparse_routes_refuse_models_without_sparse_output_and_dense_routes_refuse_sparse_models(rt_client):
    error(rt_client.post("/embed_sparse", json={"inputs": "a", "model": "sentence-transformers/all-MiniLM-L6-v2"}), 400,
          "model", "cannot do sparse embeddings")
    error(rt_client.post("/v1/embeddings", json={"input": "a", "model": "splade"}), 400, "model", "sparse model")
    error(rt_client.post("/v1/sparse_embeddings", json={"input": "a", "model": "nope"}), 404, "model", "splade")
    error(rt_client.post("/v1/sparse_embeddings", json={"input": "a", "model": "splade", "prompt_name": "nope"}), 400,
          "prompt_name")


def test_pooling_embed_is_the_embeddings_route_and_token_embed_the_token_vectors(rt_client):
    pooled = rt_client.post("/pooling", json={"input": ["a cat"], "model": "m3", "task": "embed"}).get_json()
    openai = rt_client.post("/v1/embeddings", json={"input": ["a cat"], "model": "m3"}).get_json()
    assert pooled["object"] == "list" and pooled["id"].startswith("pool-") and isinstance(pooled["created"], int)
    assert pooled["data"][0]["object"] == "pooling" and pooled["data"][0]["index"] == 0
    np.testing.assert_allclose(pooled["data"][0]["data"], openai["data"][0]["embedding"], atol=1e-7)
    assert pooled["usage"]["prompt_tokens"] == openai["usage"]["prompt_tokens"] and pooled["usage"]["completion_tokens"] == 0
    # token_embed: one unit vector per token; dimensions cuts and re-normalises; normalize false keeps the norms.
    full = np.asarray(rt_client.post("/pooling", json={"input": "a cat", "model": "m3", "task": "token_embed"}).get_json()["data"][0]["data"])
    cut = np.asarray(rt_client.post("/pooling", json={"input": "a cat", "model": "m3", "task": "token_embed",
                                                      "dimensions": 8}).get_json()["data"][0]["data"])
    raw = np.asarray(rt_client.post("/pooling", json={"input": "a cat", "model": "m3", "task": "token_embed",
                                                      "normalize": False}).get_json()["data"][0]["data"])
    np.testing.assert_allclose(np.linalg.norm(full, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(cut, raw[:, :8] / np.linalg.norm(raw[:, :8], axis=1, keepdims=True), atol=1e-6)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)
    # base64: little-endian float32 of the rows, as vLLM sends it.
    b64 = rt_client.post("/pooling", json={"input": "a cat", "model": "m3", "task": "token_embed",
                                           "encoding_format": "base64"}).get_json()["data"][0]["data"]
    np.testing.assert_array_equal(np.frombuffer(base64.b64decode(b64), "<f4").reshape(full.shape), full.astype(np.float32))
    # A multi-vector-only model's default task is token_embed; a PyLate query expands to its query length.
    query = rt_client.post("/pooling", json={"input": "a cat", "model": "colbert", "input_type": "query"}).get_json()
    assert np.asarray(query["data"][0]["data"]).shape == (16, 16)


def test_pooling_refuses_what_it_cannot_do_by_field(rt_client):
    error(rt_client.post("/pooling", json={"input": "a", "task": "tag"}), 400, "task", "embed, token_embed, classify, token_classify")
    error(rt_client.post("/pooling", json={"input": "a", "task": "token_classify", "model": "m3"}), 400, "model",
          "token classification")
    error(rt_client.post("/pooling", json={"input": "a", "task": "classify", "model": "sentence-transformers/all-MiniLM-L6-v2"}),
          400, "model", "cannot do classification")
    default = rt_client.post("/pooling", json={"input": "a", "task": "classify"}).get_json()  # the first classifier
    assert default["model"] == "sentiment" and len(default["data"][0]["data"]) == 3
    error(rt_client.post("/pooling", json={"input": "a", "truncate_prompt_tokens": 5}), 400, "truncate_prompt_tokens", "-1")
    error(rt_client.post("/pooling", json={"input": "a", "model": "colbert", "dimensions": 17}), 400, "dimensions", "16")
    error(rt_client.post("/pooling", json={"input": [[1, 2]], "task": "token_embed", "model": "m3"}), 400, "input", "text")
    error(rt_client.post("/pooling", json={"input": "a", "model": "splade"}), 400, "model", "sparse")
    error(rt_client.post("/pooling", json={"input": "a", "task": "nope"}), 400, "task")


def test_rerank_scores_a_multi_vector_model_by_maxsim_and_refuses_what_maxsim_cannot_score(rt_client):
    docs = ["a cat sits on the mat", "the stock market fell"]
    resp = rt_client.post("/rerank", json={"query": "a cat", "documents": docs, "model": "colbert", "raw_scores": True})
    assert resp.status_code == 200 and resp.get_json()["model"] == "colbert (MaxSim)"
    q = np.asarray(rt_client.post("/pooling", json={"input": "a cat", "model": "colbert", "input_type": "query"}).get_json()["data"][0]["data"])
    scores = {r["index"]: r["relevance_score"] for r in resp.get_json()["results"]}
    for index, doc in enumerate(docs):
        d = np.asarray(rt_client.post("/pooling", json={"input": doc, "model": "colbert"}).get_json()["data"][0]["data"])
        assert scores[index] == pytest.approx(float((q @ d.T).max(axis=1).sum()), abs=1e-5)  # PyLate: summed
    error(rt_client.post("/rerank", json={"query": "a", "documents": [{"image": "x"}], "model": "colbert"}), 400,
          "documents", "MaxSim")


def test_maxsim_scores_a_long_document_by_its_best_chunk(rt_client, rt_app):
    from embedding_service.operations.retrieval import document_chunks

    engine = rt_app.extensions["embedding_service"].engines.find("colbert")
    long = " ".join(f"word{i} the stock market fell, a cat sits on the mat." for i in range(12))
    chunks, owners = document_chunks(engine, [long, "a cat"], max_chunks=3)
    assert owners == [0, 0, 0, 1] and chunks[3] == "a cat"
    for chunk in chunks[:3]:
        assert chunk in long and len(engine.model.tokenizer(chunk, add_special_tokens=False)["input_ids"]) <= 32 - 2
    body = {"query": "a cat", "documents": [long, "a cat"], "model": "colbert", "raw_scores": True, "max_chunks_per_doc": 3}
    scores = {r["index"]: r["relevance_score"] for r in rt_client.post("/rerank", json=body).get_json()["results"]}
    q = np.asarray(rt_client.post("/pooling", json={"input": "a cat", "model": "colbert", "input_type": "query"}).get_json()["data"][0]["data"])
    rows = rt_client.post("/pooling", json={"input": chunks, "model": "colbert"}).get_json()["data"]
    chunk_scores = [float((q @ np.asarray(row["data"]).T).max(axis=1).sum()) for row in rows]
    assert scores[0] == pytest.approx(max(chunk_scores[:3]), abs=1e-5) and scores[1] == pytest.approx(chunk_scores[3], abs=1e-5)
    unchunked = {r["index"]: r["relevance_score"] for r in rt_client.post("/rerank", json={**body, "max_chunks_per_doc": None}).get_json()["results"]}
    assert unchunked[1] == pytest.approx(scores[1], abs=1e-6)  # a short document is its own single chunk
    # A document the tokenizer keeps nothing of (control characters) is scored as it is: a number, not NaN.
    odd = rt_client.post("/rerank", json={**body, "documents": ["\u0007\u0008", "a cat"]}).get_json()["results"]
    assert all(isinstance(r["relevance_score"], float) for r in odd), odd


@pytest.fixture(scope="module")
def tight(retrieval):
    """The retrieval models under small output budgets: SPLADE fills at most its vocabulary per
    input; a PyLate query always makes 16 vectors of 16 values."""
    import json
    import os

    with open(os.path.join(retrieval["splade"], "config.json")) as handle:
        vocab = json.load(handle)["vocab_size"]
    app = app_from({
        "MODELS": f"splade={retrieval['splade']},colbert={retrieval['colbert']}",
        "MAX_SPARSE_ENTRIES": str(2 * vocab - 1), "MAX_TOKEN_VECTOR_VALUES": str(2 * 16 * 16 - 1),
    })
    return app, vocab


def batches(app) -> int:
    return sum(e.batcher.stats.batches for e in app.extensions["embedding_service"].engines.engines)


def test_output_budgets_refuse_oversize_requests_with_413_before_any_forward_pass(tight):
    app, vocab = tight
    client = app.test_client()
    before = batches(app)
    message = error(client.post("/embed_sparse", json={"inputs": ["a", "b"]}), 413, "inputs", "MAX_SPARSE_ENTRIES")
    assert f"up to {2 * vocab} sparse entries" in message
    error(client.post("/v1/sparse_embeddings", json={"input": ["a", "b"]}), 413, "input", "MAX_SPARSE_ENTRIES")
    error(client.post("/pooling", json={"input": ["a", "b"], "input_type": "query", "model": "colbert"}), 413, "input",
          "MAX_TOKEN_VECTOR_VALUES", "up to 512")
    assert batches(app) == before  # refused before any forward pass
    assert client.post("/embed_sparse", json={"inputs": ["a"]}).status_code == 200
    assert client.post("/pooling", json={"input": ["a", "b"], "model": "colbert"}).status_code == 200  # documents: short
    assert batches(app) > before


def test_the_default_dtype_stays_within_the_documented_distance_of_float32(rt_client, retrieval):
    """DTYPE=auto (bf16 autocast where the CPU has native bf16): sparse vectors and token vectors at
    cosine >= 0.999 to float32 (docs/models.md); float32 elsewhere, then identical."""
    auto = app_from({"MODELS": f"m3={retrieval['m3']},colbert={retrieval['colbert']}", "DTYPE": "auto"}).test_client()
    texts = ["a cat sits on the mat", "paris is the capital of france", "deep learning is a subset of machine learning"]

    def dense_sparse(client):
        rows = np.zeros((len(texts), 512))
        for row, item in zip(rows, client.post("/v1/sparse_embeddings", json={"input": texts, "model": "m3"}).get_json()["data"]):
            row[item["indices"]] = item["values"]
        return rows

    a, b = dense_sparse(auto), dense_sparse(rt_client)
    assert ((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min() >= 0.999
    for model in ("m3", "colbert"):
        body = {"input": texts, "model": model, "task": "token_embed"}
        for x, y in zip(auto.post("/pooling", json=body).get_json()["data"], rt_client.post("/pooling", json=body).get_json()["data"]):
            x, y = np.asarray(x["data"]), np.asarray(y["data"])
            assert x.shape == y.shape and (x * y).sum(1).min() >= 0.999
