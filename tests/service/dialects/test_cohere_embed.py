"""Cohere's embed API (`/v1/embed`, `/v2/embed`) through the official `cohere` SDK: the response
shapes, parity with `/v1/embeddings`, `input_type` prompts, `truncate`, the quantized types
(checked against sentence-transformers' `quantize_embeddings` for binary/ubinary), images, the
errors, and what the description says."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import pytest
from sentence_transformers.util.quantization import quantize_embeddings

from conftest import app_from, openai_vectors, request_schema_errors
from embedding_service.operations import quantization
from support.errors import expect_error
from support.image_files import data_uri, encode, picture
from support.texts import DIALECT_LONG as LONG, DIALECT_TEXTS as TEXTS, MINILM  # the same texts as TEI's tests

def post(client, path, body, status=200):
    resp = client.post(path, json=body)
    assert resp.status_code == status, resp.get_json()
    return resp.get_json()


def cosines(a, b) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    return np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def sdk(live_url):
    import cohere

    return cohere.Client(base_url=live_url, api_key="unused"), cohere.ClientV2(base_url=live_url, api_key="unused")


# ------------------------------------------------------------------ the SDKs
def test_v1_sdk_floats_and_by_type(sdk, client):
    v1, _ = sdk
    expected = openai_vectors(client, TEXTS)
    floats = v1.embed(texts=TEXTS, model="all-MiniLM-L6-v2", input_type="search_document")
    assert type(floats).__name__ == "EmbeddingsFloatsEmbedResponse" and floats.texts == TEXTS
    assert cosines(floats.embeddings, expected).min() >= 0.9999
    assert floats.meta.api_version.version == "1" and floats.meta.billed_units.input_tokens > 0
    typed = v1.embed(texts=TEXTS, embedding_types=["float", "int8", "uint8", "binary", "ubinary", "base64"])
    assert type(typed).__name__ == "EmbeddingsByTypeEmbedResponse"
    vectors = np.array(typed.embeddings.float_, dtype=np.float32)
    assert cosines(vectors, expected).min() >= 0.9999
    np.testing.assert_array_equal(typed.embeddings.int8, np.rint(vectors * 127))
    np.testing.assert_array_equal(np.array(typed.embeddings.uint8), np.rint(vectors * 127) + 128)
    np.testing.assert_array_equal(typed.embeddings.binary, quantize_embeddings(vectors, "binary"))
    np.testing.assert_array_equal(typed.embeddings.ubinary, quantize_embeddings(vectors, "ubinary"))
    decoded = np.array([np.frombuffer(base64.b64decode(row), dtype="<f4") for row in typed.embeddings.base64])
    np.testing.assert_array_equal(decoded, vectors)
    assert len(typed.embeddings.binary[0]) == 48 and min(map(min, typed.embeddings.uint8)) >= 1


def test_v2_sdk_sync_and_async(sdk, client, live_url):
    import cohere

    _, v2 = sdk
    expected = openai_vectors(client, TEXTS)
    result = v2.embed(texts=TEXTS, model="all-MiniLM-L6-v2", input_type="search_query", embedding_types=["float", "int8"])
    assert result.response_type == "embeddings_by_type" and result.texts == TEXTS and result.meta.api_version.version == "2"
    assert cosines(result.embeddings.float_, expected).min() >= 0.9999 and result.embeddings.uint8 is None
    default = v2.embed(texts=TEXTS[:1], model=MINILM, input_type="search_query")  # no embedding_types: float
    assert len(default.embeddings.float_) == 1 and default.embeddings.int8 is None
    short = v2.embed(texts=TEXTS, model=MINILM, input_type="clustering", embedding_types=["float"], output_dimension=64)
    assert cosines(short.embeddings.float_, openai_vectors(client, TEXTS, dimensions=64)).min() >= 0.9999

    async def run():
        return await cohere.AsyncClientV2(base_url=live_url, api_key="unused").embed(
            texts=TEXTS, model=MINILM, input_type="search_document", embedding_types=["float"]
        )

    assert cosines(asyncio.run(run()).embeddings.float_, expected).min() >= 0.9999


def test_v2_inputs_join_text_parts(client):
    inputs = [{"content": [{"type": "text", "text": "a cat"}, {"type": "text", "text": "sits on the mat"}]},
              {"content": [{"type": "text", "text": TEXTS[2]}]}]
    body = post(client, "/v2/embed", {"inputs": inputs, "embedding_types": ["float"]})
    assert body["texts"] == [TEXTS[0], TEXTS[2]]
    assert cosines(body["embeddings"]["float"], openai_vectors(client, [TEXTS[0], TEXTS[2]])).min() >= 0.9999


# ------------------------------------------------------------------ prompts and truncation
def test_input_type_selects_the_models_prompt(client):
    for input_type, prompt in (("search_query", "query"), ("search_document", "document")):
        body = post(client, "/v2/embed", {"texts": TEXTS, "model": "qwen", "input_type": input_type})
        assert cosines(body["embeddings"]["float"], openai_vectors(client, TEXTS, model="qwen", input_type=prompt)).min() >= 0.9999
    query = np.array(post(client, "/v2/embed", {"texts": TEXTS, "model": "qwen", "input_type": "search_query"})["embeddings"]["float"])
    plain = np.array(post(client, "/v2/embed", {"texts": TEXTS, "model": "qwen", "input_type": "classification"})["embeddings"]["float"])
    assert cosines(plain, openai_vectors(client, TEXTS, model="qwen")).min() >= 0.9999  # no "classification" prompt
    assert cosines(query, plain).max() < 0.999  # the query prompt changed the vectors


def test_truncate_sides_and_none(client):
    for truncate, side in (("START", "left"), ("END", "right")):
        body = post(client, "/v1/embed", {"texts": [LONG], "truncate": truncate})
        tei = post(client, "/embed", {"inputs": [LONG], "truncation_direction": side})
        assert cosines(body["embeddings"], tei).min() >= 0.9999
    start = post(client, "/v1/embed", {"texts": [LONG], "truncate": "START"})["embeddings"]
    end = post(client, "/v1/embed", {"texts": [LONG], "truncate": "END"})["embeddings"]
    assert cosines(start, end).max() < 0.99
    resp = client.post("/v1/embed", json={"texts": ["short", LONG], "truncate": "NONE"})
    expect_error(resp, 422, "texts", "texts[1]", "256", style="cohere")


def test_max_tokens_cuts_each_text(client, minilm_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    ids = tokenizer(TEXTS[0], add_special_tokens=False)["input_ids"]
    body = post(client, "/v2/embed", {"texts": TEXTS[:1], "max_tokens": 3, "embedding_types": ["float"]})
    assert cosines(body["embeddings"]["float"], openai_vectors(client, [tokenizer.decode(ids[:3])])).min() >= 0.9999
    tail = post(client, "/v2/embed", {"texts": TEXTS[:1], "max_tokens": 3, "truncate": "START", "embedding_types": ["float"]})
    assert cosines(tail["embeddings"]["float"], openai_vectors(client, [tokenizer.decode(ids[-3:])])).min() >= 0.9999
    resp = client.post("/v2/embed", json={"texts": TEXTS[:1], "max_tokens": 3, "truncate": "NONE"})
    expect_error(resp, 422, "texts", "max_tokens", "3", style="cohere")


# ------------------------------------------------------------------ quantization
def test_quantization_is_per_vector_and_matches_sentence_transformers():
    rng = np.random.default_rng(0)
    for dimension in (384, 13, 1):
        vectors = rng.standard_normal((6, dimension)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for kind in ("int8", "uint8", "binary", "ubinary"):
            whole = quantization.quantize(vectors, kind)
            alone = np.concatenate([quantization.quantize(vectors[i:i + 1], kind) for i in range(len(vectors))])
            np.testing.assert_array_equal(whole, alone)  # a vector's codes never depend on its batch
        np.testing.assert_array_equal(quantization.binary(vectors), quantize_embeddings(vectors, "binary"))
        np.testing.assert_array_equal(quantization.ubinary(vectors), quantize_embeddings(vectors, "ubinary"))
        assert quantization.binary(vectors).shape == (6, (dimension + 7) // 8)
    edges = np.array([[1.0, -1.0, 0.0, 0.5 / 127, -1.5 / 127]], dtype=np.float32)
    assert quantization.int8(edges).tolist() == [[127, -127, 0, 0, -2]]  # round half to even
    assert quantization.uint8(edges).tolist() == [[255, 1, 128, 128, 126]]
    with pytest.raises(ValueError, match="unknown embedding type"):
        quantization.quantize(edges, "fp8")


# ------------------------------------------------------------------ images
def test_images_on_a_multimodal_model(mm_client):
    uri = data_uri(encode(picture(), "PNG"), "image/png")
    expected = post(mm_client, "/embed", {"images": [uri]})
    v1 = post(mm_client, "/v1/embed", {"images": [uri], "input_type": "image"})
    assert v1["texts"] == [] and v1["meta"]["billed_units"]["images"] == 1
    assert cosines(v1["embeddings"], expected).min() >= 0.9999
    inputs = [{"content": [{"type": "text", "text": "a photo of a cat"}]},
              {"content": [{"type": "image_url", "image_url": {"url": uri}}]}]
    v2 = post(mm_client, "/v2/embed", {"inputs": inputs, "embedding_types": ["float"]})
    rows = v2["embeddings"]["float"]
    assert cosines(rows[1:], expected).min() >= 0.9999 and v2["texts"] == ["a photo of a cat"]
    siglip_text = openai_vectors(mm_client, ["a photo of a cat"], model="siglip2")  # the image model's text tower
    assert cosines(rows[:1], siglip_text).min() >= 0.9999
    resp = mm_client.post("/v2/embed", json={"images": [uri], "model": MINILM})
    expect_error(resp, 400, "model", "cannot do image embeddings", style="cohere")


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("path, body, status, param, words", [
    ("/v1/embed", {"texts": ["a"], "images": ["b"]}, 400, "images", ["exactly one"]),
    ("/v2/embed", {"texts": ["a"], "inputs": [{"content": [{"type": "text", "text": "b"}]}]}, 400, "inputs", ["exactly one"]),
    ("/v1/embed", {"images": ["b"]}, 400, "images", ["no model that can do image embeddings", "MODEL_NAME"]),
    ("/v1/embed", {"texts": ["a"], "embedding_types": ["fp16"]}, 400, "embedding_types", ["int8"]),
    ("/v1/embed", {"texts": ["a"], "embedding_types": []}, 400, "embedding_types", []),
    ("/v1/embed", {"texts": ["a"], "truncate": "end"}, 400, "truncate", ["END"]),
    ("/v1/embed", {"texts": ["a"], "input_type": "search"}, 400, "input_type", ["search_query"]),
    ("/v1/embed", {"texts": ["a", ""]}, 400, "texts", ["texts[1]"]),
    ("/v1/embed", {"texts": ["a"], "model": "nope"}, 404, "model", ["served models", MINILM]),
    ("/v2/embed", {"texts": ["a"], "output_dimension": 1000}, 400, "output_dimension", ["384"]),
    ("/v2/embed", {"texts": ["a"], "max_tokens": 0}, 400, "max_tokens", []),
    ("/v2/embed", {"inputs": [{"content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "x"}}]}]},
     400, "inputs", ["inputs[0].content", "one image"]),
    ("/v2/embed", {"inputs": [{"content": [{"type": "audio"}]}]}, 400, "inputs", ["inputs[0].content[0]"]),
    ("/v2/embed", {"texts": ["a"], "unknown": 1}, 400, "unknown", ["unknown field"]),
])
def test_errors_name_the_field(client, path, body, status, param, words):
    resp = client.post(path, json=body)
    expect_error(resp, status, param, *words, style="cohere")
    assert resp.get_json()["id"] == resp.headers["X-Request-ID"]  # Cohere's error id: the request id


def test_batch_limit():
    small = app_from({"MAX_CLIENT_BATCH_SIZE": "2"}).test_client()
    resp = small.post("/v2/embed", json={"texts": ["a", "b", "c"]})
    expect_error(resp, 413, "texts", "MAX_CLIENT_BATCH_SIZE", "2", style="cohere")


CASES = [
    ("/v1/embed", {"texts": ["a"], "embedding_types": ["binary", "float"]}, True),
    ("/v1/embed", {"images": ["a"]}, False),  # no image model in this deployment
    ("/v1/embed", {"texts": ["a"], "images": ["a"]}, False),
    ("/v1/embed", {"texts": ["a"], "model": "qwen:latest"}, True),
    ("/v1/embed", {"texts": ["a"], "model": "nope:latest"}, False),
    ("/v2/embed", {"inputs": [{"content": [{"type": "text", "text": "a"}]}], "output_dimension": 32, "model": "qwen"}, True),
    ("/v2/embed", {"inputs": [{"content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, False),
    ("/v2/embed", {"texts": ["a"], "output_dimension": 33, "model": "qwen"}, False),
    ("/v2/embed", {"texts": ["a"], "output_dimension": 384}, True),
    ("/v2/embed", {"texts": ["a"], "priority": 3, "max_tokens": 2, "truncate": "START"}, True),
]


@pytest.mark.parametrize("path, body, valid", CASES)
def test_the_description_says_what_is_accepted(client, path, body, valid):
    errors = request_schema_errors(client.get("/openapi.json").get_json(), path, body)
    assert (not errors) == valid, errors
    assert client.post(path, json=body).status_code in ((200,) if valid else (400, 404))
