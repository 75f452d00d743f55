"""The rest of TEI's router: `POST /` (by the request's shape, through huggingface_hub's
InferenceClient against the bare host), `/similarity`, `/tokenize`, `/decode`, `/embed_all`, and
TEI's rerank request on `/rerank`; parity with `/v1/embeddings` and the reference recipes, the
errors, and what the description says."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from conftest import app_from, openai_vectors, request_schema_errors

from support.errors import expect_error
from support.texts import DIALECT_LONG as LONG, DIALECT_TEXTS as TEXTS  # noqa: E402


def ok(client, path, body, **kwargs):
    resp = client.post(path, json=body, **kwargs)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def refused(client, path, body, status, param, *words, **kwargs):
    """A refusal in TEI's `{"error", "error_type"}` whose message names `param` and holds `words`."""
    resp = client.post(path, json=body, **kwargs)
    message = expect_error(resp, status, param, *words, style="tei")
    assert resp.get_json()["error_type"] == "Validation", resp.get_json()  # TEI's type for every refusal of a request
    return message


@pytest.fixture(scope="module")
def small():
    """MiniLM with small limits and an API key."""
    return app_from(
        {"MAX_CLIENT_BATCH_SIZE": "2", "MAX_INPUT_CHARS": "60", "MAX_EMBED_ALL_TOKENS": "8", "API_KEYS": "k"}
    ).test_client()


KEY = {"Authorization": "Bearer k"}


# ------------------------------------------------------------------ POST /
def test_root_embeds_as_embed_and_matches_openai(client):
    root = np.array(ok(client, "/", {"inputs": TEXTS}), dtype=np.float32)
    np.testing.assert_array_equal(root, np.array(ok(client, "/embed", {"inputs": TEXTS}), dtype=np.float32))
    assert np.min(np.sum(root * openai_vectors(client, TEXTS), axis=1)) >= 0.9999
    single = ok(client, "/", {"inputs": TEXTS[0], "normalize": False, "dimensions": 16, "model": "all-MiniLM-L6-v2"})
    assert len(single) == 1 and len(single[0]) == 16 and abs(np.linalg.norm(single[0]) - 1) > 1e-3


def test_root_scores_similarity_and_reranks_by_shape(client):
    body = {"inputs": {"source_sentence": TEXTS[0], "sentences": TEXTS[1:]}, "parameters": {}}
    scores = ok(client, "/", body)
    vectors = openai_vectors(client, TEXTS)
    np.testing.assert_allclose(scores, vectors[1:] @ vectors[0], atol=1e-5)
    ranks = ok(client, "/", {"query": TEXTS[0], "texts": [TEXTS[2], TEXTS[1]], "return_text": True})
    assert [row["index"] for row in ranks] == [1, 0] and ranks[0]["text"] == TEXTS[1]
    assert ranks[0]["score"] == pytest.approx((float(vectors[1] @ vectors[0]) + 1) / 2, abs=1e-5)
    message = refused(client, "/", {"input": "a"}, 400, "inputs", "source_sentence", "query")
    assert "texts" in message
    refused(client, "/", ["a"], 400, None, "JSON object")


def test_inference_client_against_the_bare_host(live_url, monkeypatch):
    """huggingface_hub posts feature_extraction and sentence_similarity to the URL itself."""
    from huggingface_hub import AsyncInferenceClient, InferenceClient, constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the tests run offline; this is loopback
    client = InferenceClient(model=live_url)
    import requests

    plain = requests.post(f"{live_url}/v1/embeddings", json={"input": TEXTS}, timeout=30).json()
    expected = np.array([row["embedding"] for row in plain["data"]], dtype=np.float32)
    single = client.feature_extraction(TEXTS[0])
    assert single.shape == (1, 384) and float(single[0] @ expected[0]) >= 0.9999
    many = client.feature_extraction(TEXTS, truncate=True, truncation_direction="left", normalize=True)
    assert np.min(np.sum(many * expected, axis=1)) >= 0.9999
    similarity = client.sentence_similarity(TEXTS[0], other_sentences=TEXTS[1:])
    np.testing.assert_allclose(similarity, expected[1:] @ expected[0], atol=1e-5)

    async def both():
        remote = AsyncInferenceClient(model=live_url)
        return await remote.feature_extraction(TEXTS), await remote.sentence_similarity(TEXTS[0], other_sentences=TEXTS[1:])

    vectors, scores = asyncio.run(both())
    assert np.min(np.sum(vectors * expected, axis=1)) >= 0.9999
    np.testing.assert_allclose(scores, similarity, atol=1e-6)


def test_post_root_needs_a_key_where_get_root_does_not(small):
    assert small.get("/").status_code == 200  # AUTH_PUBLIC_PATHS holds "/": its GET only
    refused(small, "/", {"inputs": "a"}, 401, None, "API key")
    assert small.post("/", json={"inputs": "a"}, headers=KEY).status_code == 200
    spec = small.get("/openapi.json").get_json()
    assert spec["paths"]["/"]["get"]["security"] == [] and "401" not in spec["paths"]["/"]["get"]["responses"]
    assert "security" not in spec["paths"]["/"]["post"] and "401" in spec["paths"]["/"]["post"]["responses"]


# ------------------------------------------------------------------ /similarity
def test_similarity_matches_cosine_of_the_embeddings(client):
    vectors = openai_vectors(client, TEXTS)
    scores = ok(client, "/similarity", {"inputs": {"source_sentence": TEXTS[0], "sentences": TEXTS}})
    np.testing.assert_allclose(scores, vectors @ vectors[0], atol=1e-5)
    assert scores[0] == pytest.approx(1.0, abs=1e-5) and scores[1] > scores[2]
    # a prompt applies to every text (the tiny Qwen3's "query" prompt)
    prompted = np.array(ok(client, "/embed", {"inputs": TEXTS, "model": "qwen", "prompt_name": "query"}), dtype=np.float32)
    body = {"inputs": {"source_sentence": TEXTS[0], "sentences": TEXTS[1:]}, "model": "qwen", "prompt_name": "query"}
    np.testing.assert_allclose(ok(client, "/similarity", body), prompted[1:] @ prompted[0], atol=1e-5)


def test_similarity_options_at_the_top_or_in_parameters(client):
    inputs = {"source_sentence": LONG, "sentences": [TEXTS[0]]}
    left = ok(client, "/similarity", {"inputs": inputs, "truncation_direction": "Left"})
    nested = ok(client, "/similarity", {"inputs": inputs, "parameters": {"truncation_direction": "left"}})
    right = ok(client, "/similarity", {"inputs": inputs})
    assert left == nested
    # as the texts embedded with each side cut (2e-3: batches differ, and the CPU may run bf16)
    for side, got in (("left", left[0]), ("right", right[0])):
        cut = np.array(ok(client, "/embed", {"inputs": [LONG, TEXTS[0]], "truncation_direction": side}), dtype=np.float32)
        assert got == pytest.approx(float(cut[1] @ cut[0]), abs=2e-3)
    assert abs(left[0] - right[0]) > 1e-2
    refused(client, "/similarity", {"inputs": inputs, "truncate": True, "parameters": {"truncate": True}}, 400, "truncate", "twice")
    refused(client, "/similarity", {"inputs": inputs, "parameters": {"prompt_name": "query"}}, 400, "parameters", "prompt_name")
    refused(client, "/similarity", {"inputs": inputs, "truncate": False}, 422, "inputs.source_sentence", "256")
    refused(client, "/similarity", {"inputs": {"source_sentence": "a", "sentences": []}}, 400, "inputs", "inputs.sentences")
    refused(client, "/similarity", {"inputs": {"source_sentence": "a", "sentences": ["b", ""]}}, 400, "inputs", "sentences[1]")


def test_similarity_limits_name_the_field_and_the_setting(small):
    refused(small, "/similarity", {"inputs": {"source_sentence": "a", "sentences": ["b", "c"]}}, 413,
            "inputs.sentences", "MAX_CLIENT_BATCH_SIZE", "2", headers=KEY)
    refused(small, "/similarity", {"inputs": {"source_sentence": "x" * 61, "sentences": ["b"]}}, 413,
            "inputs.source_sentence", "MAX_INPUT_CHARS", "60", headers=KEY)


# ------------------------------------------------------------------ /tokenize and /decode
def test_tokenize_gives_the_tokenizers_ids_with_byte_offsets(client, minilm_path):
    text = "héllo wörld, 中文!"
    tokens = ok(client, "/tokenize", {"inputs": text})
    assert len(tokens) == 1
    reference = AutoTokenizer.from_pretrained(minilm_path)
    assert [t["id"] for t in tokens[0]] == reference(text)["input_ids"]
    first, last = tokens[0][0], tokens[0][-1]
    assert first == {"id": 101, "text": "[CLS]", "special": True, "start": None, "stop": None} and last["text"] == "[SEP]"
    data = text.encode()
    for token in tokens[0][1:-1]:
        assert not token["special"] and data[token["start"]:token["stop"]].decode() == token["text"]
    assert [t["text"] for t in tokens[0][1:3]] == ["héllo", "wörld"] and tokens[0][2]["start"] == len("héllo ".encode())
    bare = ok(client, "/tokenize", {"inputs": [text, "a"], "add_special_tokens": False})
    assert [t["id"] for t in bare[0]] == [t["id"] for t in tokens[0][1:-1]] and len(bare) == 2


def test_tokenize_applies_the_prompt(client, tiny):
    reference = AutoTokenizer.from_pretrained(tiny["qwen"])
    tokens = ok(client, "/tokenize", {"inputs": "a cat", "model": "qwen", "prompt_name": "query"})[0]
    from support.tiny_models import QWEN3_QUERY_PROMPT

    assert [t["id"] for t in tokens] == reference(QWEN3_QUERY_PROMPT + "a cat")["input_ids"]
    refused(client, "/tokenize", {"inputs": "a", "prompt_name": "query"}, 400, "prompt_name", "no prompt named")
    refused(client, "/tokenize", {"inputs": "a", "model": "nope"}, 404, "model", "served models")


def test_decode_round_trips(client, minilm_path):
    reference = AutoTokenizer.from_pretrained(minilm_path)
    ids = reference(TEXTS[0])["input_ids"]
    assert ok(client, "/decode", {"ids": ids}) == [TEXTS[0]]
    both = ok(client, "/decode", {"ids": [ids, ids[1:3]], "skip_special_tokens": False})
    assert both == [reference.decode(ids), reference.decode(ids[1:3])] and both[0].startswith("[CLS]")
    refused(client, "/decode", {"ids": [5, 30522]}, 400, "ids", "30522", "0..30521")
    refused(client, "/decode", {"ids": [[5], [-1]]}, 400, "ids")
    refused(client, "/decode", {"ids": [[5], []]}, 400, "ids", "ids[1]")
    refused(client, "/decode", {"ids": "5"}, 400, "ids")


def test_token_route_limits(small):
    refused(small, "/tokenize", {"inputs": ["a", "b", "c"]}, 413, "inputs", "MAX_CLIENT_BATCH_SIZE", headers=KEY)
    refused(small, "/tokenize", {"inputs": "y" * 61}, 413, "inputs", "MAX_INPUT_CHARS", "60", headers=KEY)
    refused(small, "/decode", {"ids": [[1], [2], [3]]}, 413, "ids", "MAX_CLIENT_BATCH_SIZE", headers=KEY)


# ------------------------------------------------------------------ /embed_all
def test_embed_all_gives_the_models_token_states(client, minilm_path):
    rows = ok(client, "/embed_all", {"inputs": TEXTS})
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    model = AutoModel.from_pretrained(minilm_path).eval()
    for text, states in zip(TEXTS, rows):
        batch = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            expected = model(**batch).last_hidden_state[0].numpy()
        assert np.array(states).shape == expected.shape
        np.testing.assert_allclose(states, expected, atol=1e-4)
    pooled = np.array([np.mean(states, axis=0) for states in rows], dtype=np.float32)  # MiniLM: mean pooling
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    assert np.min(np.sum(pooled * openai_vectors(client, TEXTS), axis=1)) >= 0.9999


def test_embed_all_is_batch_invariant_with_left_padding(client):
    alone = ok(client, "/embed_all", {"inputs": "a cat", "model": "qwen"})[0]
    together = ok(client, "/embed_all", {"inputs": ["a cat", "a much longer text " * 5], "model": "qwen"})[0]
    np.testing.assert_allclose(alone, together, atol=1e-5)
    left = ok(client, "/embed_all", {"inputs": LONG, "truncation_direction": "left"})[0]
    right = ok(client, "/embed_all", {"inputs": LONG})[0]
    assert len(left) == len(right) == 256 and not np.allclose(left, right)


def test_embed_all_refusals(client, small, mm_client, rr_client):
    refused(small, "/embed_all", {"inputs": ["one two three", "four five six seven"]}, 413, "inputs",
            "MAX_EMBED_ALL_TOKENS", "8", headers=KEY)
    refused(client, "/embed_all", {"inputs": LONG, "truncate": False}, 422, "inputs", "256")
    refused(mm_client, "/embed_all", {"inputs": "a", "model": "siglip2"}, 400, "model", "no token embeddings")
    refused(rr_client, "/embed_all", {"inputs": "a", "model": "bert-ce"}, 400, "model", "cannot do text embeddings")
    spec = mm_client.get("/openapi.json").get_json()
    model = spec["components"]["schemas"]["TEIEmbedAllRequest"]["properties"]["model"]
    assert "siglip2" not in str(model) and "sentence-transformers/all-MiniLM-L6-v2" in str(model)


# ------------------------------------------------------------------ TEI's rerank request on /rerank
LITELLM = {"raw_scores": False, "truncate": False, "truncation_direction": "Right"}  # what litellm's huggingface/ sends


def test_tei_rerank_request_gets_teis_answer(rr_client):
    docs = ["deep learning is a subset of machine learning", "the weather is nice", "neural networks learn"]
    tei = ok(rr_client, "/rerank", {"query": "what is deep learning?", "texts": docs, **LITELLM})
    cohere = ok(rr_client, "/rerank", {"query": "what is deep learning?", "documents": docs, "return_documents": False})
    assert isinstance(tei, list) and [set(row) for row in tei] == [{"index", "score"}] * 3
    assert [row["index"] for row in tei] == [row["index"] for row in cohere["results"]]
    assert [row["score"] for row in tei] == pytest.approx([row["relevance_score"] for row in cohere["results"]], abs=1e-6)
    assert [row["score"] for row in tei] == sorted((row["score"] for row in tei), reverse=True)
    texts = ok(rr_client, "/rerank", {"query": "q", "texts": docs, "return_text": True, "top_n": 2})
    assert len(texts) == 2 and all(row["text"] == docs[row["index"]] for row in texts)
    raw = ok(rr_client, "/rerank", {"query": "what is deep learning?", "texts": docs, "raw_scores": True})
    relevance = {row["index"]: row["score"] for row in tei}
    assert all(1 / (1 + np.exp(-row["score"])) == pytest.approx(relevance[row["index"]], abs=1e-6) for row in raw)
    bare = ok(rr_client, "/rerank", {"query": "q", "texts": docs})  # the plain rerank API's request: Cohere's body
    assert isinstance(bare, dict) and "results" in bare
    assert isinstance(ok(rr_client, "/v1/rerank", {"query": "q", "texts": docs, **LITELLM}), dict)  # Cohere's path
    root = ok(rr_client, "/", {"query": "what is deep learning?", "texts": docs, **LITELLM})
    assert root == tei


def test_truncation_direction_on_rerank(client, rr_client):
    docs = [LONG, "the first words matter here"]
    left = ok(client, "/rerank", {"query": "the last words matter there", "texts": docs, "truncation_direction": "left"})
    right = ok(client, "/rerank", {"query": "the last words matter there", "texts": docs, "truncation_direction": "right"})
    for side, ranks in (("left", left), ("right", right)):
        vectors = np.array(ok(client, "/embed", {"inputs": ["the last words matter there", LONG], "truncation_direction": side}))
        score = {row["index"]: row["score"] for row in ranks}[0]
        assert score == pytest.approx((float(vectors[1] @ vectors[0]) + 1) / 2, abs=2e-3)  # batches differ
    assert {row["index"]: row["score"] for row in left}[0] > {row["index"]: row["score"] for row in right}[0] + 1e-2
    refused(rr_client, "/rerank", {"query": "q", "texts": ["a"], "truncation_direction": "left"}, 400,
            "truncation_direction", "pair reranker")
    refused(rr_client, "/rerank", {"query": "q", "texts": ["a"], "truncation_direction": "up"}, 400, "truncation_direction")


# ------------------------------------------------------------------ the description says what is accepted
CASES = [
    ("/", {"inputs": "a"}, True),
    ("/", {"inputs": {"source_sentence": "a", "sentences": ["b"]}, "parameters": {}}, True),
    ("/", {"query": "q", "texts": ["a"], "truncation_direction": "Right"}, True),
    ("/", {"query": "q", "texts": ["a"], "inputs": "a"}, False),
    ("/", {"query": "q", "texts": ["a"], "model": "qwen"}, True),
    ("/similarity", {"inputs": {"source_sentence": "a", "sentences": ["b"]}, "truncate": True, "parameters": {"truncate": True}}, False),
    ("/similarity", {"inputs": {"source_sentence": "a", "sentences": ["b"]}, "parameters": {"truncation_direction": "LEFT"}}, True),
    ("/similarity", {"inputs": {"source_sentence": "a", "sentences": ["b"]}, "prompt_name": "query"}, False),
    ("/similarity", {"inputs": {"source_sentence": "a", "sentences": ["b"]}, "model": "qwen", "prompt_name": "query"}, True),
    ("/tokenize", {"inputs": ["a", "b"], "add_special_tokens": False}, True),
    ("/tokenize", {"inputs": []}, False),
    ("/decode", {"ids": [30521]}, True),
    ("/decode", {"ids": [30522]}, False),
    ("/decode", {"ids": [[399]], "model": "qwen"}, True),
    ("/decode", {"ids": [[400]], "model": "qwen"}, False),
    ("/embed_all", {"inputs": "a", "model": "plain-max"}, True),
    ("/embed_all", {"inputs": "a", "truncation_direction": "left"}, True),
]


@pytest.mark.parametrize("path, body, valid", CASES)
def test_the_description_says_what_the_tei_routes_accept(client, path, body, valid):
    errors = request_schema_errors(client.get("/openapi.json").get_json(), path, body)
    assert (not errors) == valid, errors
    assert client.post(path, json=body).status_code == (200 if valid else 400)
