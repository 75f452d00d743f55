"""Every text dialect against a live server, through the official SDKs where they exist; all
agree on the same vectors. Plus the shapes of the ops routes."""

from __future__ import annotations

import base64

import numpy as np
import requests

TEXTS = ["a cat sits on the mat", "a kitten rests on a rug", "the stock market fell"]
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def tei_vectors(url: str) -> np.ndarray:
    resp = requests.post(f"{url}/embed", json={"inputs": TEXTS}, timeout=30)
    assert resp.status_code == 200
    return np.array(resp.json(), dtype=np.float32)


def test_openai_sdk_base64_and_float_agree_with_tei(live_url):
    from openai import OpenAI

    client = OpenAI(base_url=f"{live_url}/v1", api_key="unused")
    default = client.embeddings.create(model=MODEL, input=TEXTS)  # the SDK asks for base64
    explicit = client.embeddings.create(model=MODEL, input=TEXTS, encoding_format="float")
    a = np.array([d.embedding for d in default.data], dtype=np.float32)
    b = np.array([d.embedding for d in explicit.data], dtype=np.float32)
    assert a.shape == (3, 384)
    np.testing.assert_array_equal(a, b)  # base64 carries the exact float32 bits
    np.testing.assert_allclose(a, tei_vectors(live_url), atol=1e-6)
    assert default.model == MODEL and default.usage.prompt_tokens == default.usage.total_tokens > 0
    assert [d.index for d in default.data] == [0, 1, 2]
    sims = a @ a.T
    assert sims[0, 1] > sims[0, 2] and sims[0, 1] > sims[1, 2]


def test_openai_sdk_dimensions_and_alias(live_url):
    from openai import OpenAI

    client = OpenAI(base_url=f"{live_url}/v1", api_key="unused")
    result = client.embeddings.create(model="all-MiniLM-L6-v2", input="hello", dimensions=128)
    vec = np.array(result.data[0].embedding)
    assert vec.shape == (128,) and abs(np.linalg.norm(vec) - 1) < 1e-5
    assert result.model == MODEL


def test_raw_base64_is_little_endian_float32(live_url):
    resp = requests.post(f"{live_url}/embeddings", json={"input": TEXTS[0], "encoding_format": "base64"}, timeout=30)
    encoded = resp.json()["data"][0]["embedding"]
    decoded = np.frombuffer(base64.b64decode(encoded), dtype="<f4")
    floats = requests.post(f"{live_url}/embeddings", json={"input": TEXTS[0]}, timeout=30).json()
    np.testing.assert_array_equal(decoded, np.array(floats["data"][0]["embedding"], dtype=np.float32))
    assert floats["object"] == "list" and floats["data"][0]["object"] == "embedding"


def test_ollama_sdk_embed_agrees(live_url):
    import ollama

    client = ollama.Client(host=live_url)
    result = client.embed(model="all-MiniLM-L6-v2", input=TEXTS)
    vectors = np.array(result.embeddings, dtype=np.float32)
    np.testing.assert_allclose(vectors, tei_vectors(live_url), atol=1e-6)
    assert result.model == MODEL
    assert result.prompt_eval_count > 0 and result.total_duration > 0 and result.load_duration > 0
    single = client.embed(model=MODEL, input=TEXTS[0], dimensions=32)
    assert len(single.embeddings[0]) == 32


def test_ollama_legacy_embeddings_are_unnormalised(live_url):
    import ollama

    result = ollama.Client(host=live_url).embeddings(model=MODEL, prompt=TEXTS[0])
    raw = np.array(result.embedding)
    unit = tei_vectors(live_url)[0]
    assert abs(np.linalg.norm(raw) - 1) > 0.01
    np.testing.assert_allclose(raw / np.linalg.norm(raw), unit, atol=1e-5)


def test_siglip_service_embed_text_forms(client):
    many = client.post("/embed_text", json={"texts": TEXTS}).get_json()
    one = client.post("/embed_text", json={"text": TEXTS[1]}).get_json()
    assert len(many) == 3 and len(many[0]) == 384
    np.testing.assert_allclose(one[0], many[1], atol=1e-6)
    tei_single = client.post("/embed", json={"inputs": TEXTS[1]}).get_json()
    np.testing.assert_allclose(tei_single[0], many[1], atol=1e-6)


def test_model_selection_by_name_and_alias(client):
    tiny = client.post("/v1/embeddings", json={"input": "a cat", "model": "bert-cls"}).get_json()
    assert tiny["model"] == "bert-cls" and len(tiny["data"][0]["embedding"]) == 32
    default = client.post("/v1/embeddings", json={"input": "a cat"}).get_json()
    assert default["model"] == MODEL


def test_ops_routes(client, app):
    health = client.get("/health").get_json()
    assert health["status"] == "ok" and health["model"] == MODEL and health["device"] == "cpu"
    assert health["cuda_available"] is False and isinstance(health["pid"], int)
    info = client.get("/info").get_json()
    assert info["model_id"] == MODEL and info["max_input_length"] == 256 and info["max_client_batch_size"] == 2048
    minilm = info["models"][0]
    assert minilm["pooling"] == "mean" and minilm["dimension"] == 384 and minilm["dtype"] == "float32"
    qwen = next(m for m in info["models"] if m["id"] == "qwen")
    assert qwen["pooling"] == "lasttoken" and qwen["padding_side"] == "left"
    assert qwen["instruction_template"] == "Instruct: {instruction}\nQuery:"
    index = client.get("/").get_json()
    for route in ("POST /v1/embeddings", "POST /embed", "POST /api/embed", "GET /health", "GET /info"):
        assert route in index["routes"]
    models = client.get("/v1/models").get_json()
    assert models["object"] == "list"
    assert {m["id"] for m in models["data"]} >= {MODEL, "qwen", "bert-cls"}
    assert all(m["object"] == "model" and "/" not in m["id"].replace(MODEL, "") for m in models["data"])
    assert client.get("/ready").status_code == 200
