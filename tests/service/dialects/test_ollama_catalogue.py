"""Ollama's catalogue (`/api/tags`, `/api/show`, `/api/version`, `/api/ps`) through the official
`ollama` SDK, Ollama's `name:tag` names on every route, and Ollama's flat error body."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import requests

from embedding_service import __version__

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def sdk(live_url):
    import ollama

    return ollama.Client(host=live_url)


def test_list_names_every_served_name_with_its_tag(sdk, app, live_url):
    listed = sdk.list().models
    engines = app.extensions["embedding_service"].engines.engines
    expected = [f"{label}:latest" for engine in engines for label in (engine.name, *engine.aliases)]
    assert [m.model for m in listed] == expected
    minilm = [m for m in listed if m.model in (f"{MINILM}:latest", "all-MiniLM-L6-v2:latest")]
    assert len(minilm) == 2 and minilm[0].digest == minilm[1].digest == hashlib.sha256(MINILM.encode()).hexdigest()
    assert minilm[0].details.family == "bert" and minilm[0].details.parameter_size == "22.7M"
    assert minilm[0].details.quantization_level == "F32" and minilm[0].size > 80_000_000
    qwen = next(m for m in listed if m.model == "qwen:latest")
    assert qwen.digest != minilm[0].digest and qwen.details.family == "qwen3"
    raw = requests.get(f"{live_url}/api/tags", timeout=10).json()["models"][0]
    assert raw["name"] == raw["model"] and raw["modified_at"].endswith("Z")


def test_show_describes_a_model(sdk):
    shown = sdk.show("all-MiniLM-L6-v2:latest")
    assert shown.capabilities == ["embedding"] and shown.details.family == "bert"
    assert shown.modelinfo["bert.embedding_length"] == 384 and shown.modelinfo["bert.context_length"] == 256
    assert shown.modelinfo["general.parameter_count"] == 22_713_216 and MINILM in shown.modelfile
    qwen = sdk.show("qwen")
    assert qwen.modelinfo["qwen3.embedding_length"] == 32 and qwen.modelinfo["general.architecture"] == "qwen3"


def test_show_takes_name_too_and_names_the_default_without_either(client):
    by_name = client.post("/api/show", json={"name": "qwen:7b"}).get_json()
    assert by_name["model_info"]["general.basename"] == "qwen"
    default = client.post("/api/show", json={}).get_json()
    assert default["model_info"]["general.basename"] == MINILM
    both = client.post("/api/show", json={"model": "qwen", "name": "qwen"})
    assert both.status_code == 400 and both.get_json() == {"error": 'send "model" or "name", not both'}


def test_ps_lists_each_loaded_model_once(sdk, app):
    running = sdk.ps().models
    assert [m.model for m in running] == [f"{name}:latest" for name in app.extensions["embedding_service"].model_names]
    assert running[0].expires_at.year == 9999 and running[0].size_vram == 0 and running[0].context_length == 256


def test_version(client):
    assert client.get("/api/version").get_json() == {"version": __version__}


def test_errors_are_ollamas_flat_body(sdk, client):
    import ollama

    with pytest.raises(ollama.ResponseError) as caught:
        sdk.show("nope:latest")
    assert caught.value.status_code == 404
    body = client.post("/api/show", json={"model": "nope:latest"}).get_json()
    assert set(body) == {"error"} and "'nope:latest' is not served here" in body["error"] and MINILM in body["error"]
    assert client.post("/api/show", json={"model": 3}).get_json() == {"error": "model: Input should be a valid string"}
    assert client.post("/api/show", data="x", content_type="text/plain").status_code == 415


# ------------------------------------------------------------------ name:tag wherever a model is named
def test_a_tag_names_the_served_model_on_every_route(client, sdk):
    plain = client.post("/v1/embeddings", json={"input": "a cat", "model": MINILM}).get_json()["data"][0]["embedding"]
    for name in ("all-MiniLM-L6-v2:latest", f"{MINILM}:latest", "all-MiniLM-L6-v2:v1.0_x-y"):
        tagged = client.post("/v1/embeddings", json={"input": "a cat", "model": name}).get_json()
        assert tagged["model"] == MINILM and tagged["data"][0]["embedding"] == plain
    vector = sdk.embed(model="all-MiniLM-L6-v2:latest", input="a cat").embeddings[0]
    assert float(np.dot(vector, plain)) >= 0.9999
    assert client.post("/rerank", json={"query": "q", "documents": ["a"], "model": "qwen:latest"}).status_code == 200
    assert client.post("/embed", json={"inputs": "a", "model": "qwen:q4_0"}).status_code == 200


@pytest.mark.parametrize("name", ["nope:latest", "all-MiniLM-L6-v2:", ":latest", "all-MiniLM-L6-v2:bad/tag", "all-MiniLM-L6-v2:-x", "qwen:latest:extra"])
def test_a_tag_never_lets_an_unknown_name_through(client, name):
    resp = client.post("/api/embed", json={"input": "a", "model": name})
    assert resp.status_code == 404 and repr(name) in resp.get_json()["error"]
    openai = client.post("/v1/embeddings", json={"input": "a", "model": name}).get_json()["error"]
    assert openai["code"] == 404 and openai["param"] == "model" and "served models" in openai["message"]
