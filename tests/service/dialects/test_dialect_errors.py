"""Each dialect answers errors in its own body, with the statuses of the one error table: a 400,
404, 413 and 422 per dialect, the shape a shared path's request picks, and the peers' SDKs
reading them (OpenAI, Cohere, huggingface_hub)."""

from __future__ import annotations

import pytest

from support.errors import expect_error
from support.image_files import data_uri, encode, picture
from support.texts import MINILM

LONG = "word " * 400  # over MiniLM's 256-token window
MANY = ["a"] * 2049  # over MAX_CLIENT_BATCH_SIZE (2048)
BROKEN_PNG = data_uri(encode(picture(256, 256), "PNG")[:400])  # a truncated PNG: undecodable


# (path, body, status, param, words) for each dialect; `mm` marks a request for the image model.
OPENAI = [
    ("/v1/embeddings", {"input": []}, 400, "input", ["empty list"]),
    ("/v1/embeddings", {"input": "a", "model": "nope"}, 404, "model", ["served models"]),
    ("/v1/embeddings", {"input": MANY}, 413, "input", ["MAX_CLIENT_BATCH_SIZE"]),
]
TEI = [
    ("/embed", {"inputs": "a", "normalize": "yes"}, 400, "normalize", ["boolean"]),
    ("/embed", {"inputs": "a", "model": "nope"}, 404, "model", ["served models"]),
    ("/embed", {"inputs": MANY}, 413, "inputs", ["MAX_CLIENT_BATCH_SIZE"]),
    ("/embed", {"inputs": LONG, "truncate": False}, 422, "inputs", ["at most 256"]),
    ("/rerank", {"query": "q", "texts": ["a"], "return_text": "yes"}, 400, "return_text", []),
]
COHERE = [
    ("/v2/embed", {"texts": ["a"], "embedding_types": ["fp16"]}, 400, "embedding_types", ["int8"]),
    ("/v1/embed", {"texts": ["a"], "model": "nope"}, 404, "model", ["served models"]),
    ("/v2/rerank", {"query": "q", "documents": MANY}, 413, "documents", ["MAX_CLIENT_BATCH_SIZE"]),
    ("/v1/embed", {"texts": [LONG], "truncate": "NONE"}, 422, "texts", ["at most 256"]),
    ("/rerank", {"query": "q", "documents": []}, 400, "documents", ["empty"]),
]
VLLM = [
    ("/pooling", {"input": []}, 400, "input", ["input must be"]),
    ("/score", {"text_1": "a", "text_2": "b", "model": "nope"}, 404, "model", ["served models"]),
    ("/pooling", {"input": MANY}, 413, "input", ["MAX_CLIENT_BATCH_SIZE"]),
    ("/v1/rerank", {"query": "q", "documents": [], "truncate_prompt_tokens": -1}, 400, "documents", ["empty"]),
]
OLLAMA = [
    ("/api/embed", {"input": []}, 400, None, ["empty list"]),
    ("/api/embed", {"input": "a", "model": "nope"}, 404, None, ["not served"]),
    ("/api/embed", {"input": MANY}, 413, None, ["MAX_CLIENT_BATCH_SIZE"]),
    ("/api/embed", {"input": LONG, "truncate": False}, 422, None, ["256"]),
]
#: vLLM's `type` and TEI's `error_type` of each status (the error table's rows).
VLLM_TYPES = {400: "BadRequestError", 404: "NotFoundError", 413: "Request Entity Too Large", 422: "UnprocessableEntityError"}


@pytest.mark.parametrize("path, body, status, param, words", OPENAI)
def test_openai_routes_answer_the_nested_body(client, path, body, status, param, words):
    expect_error(client.post(path, json=body), status, param, *words, style="nested")


@pytest.mark.parametrize("path, body, status, param, words", TEI)
def test_tei_routes_answer_teis_body(client, path, body, status, param, words):
    resp = client.post(path, json=body)
    expect_error(resp, status, param, *words, style="tei")
    assert resp.get_json()["error_type"] == "Validation"  # TEI's type for a refused request


@pytest.mark.parametrize("path, body, status, param, words", COHERE)
def test_cohere_routes_answer_coheres_body(client, path, body, status, param, words):
    resp = client.post(path, json=body)
    expect_error(resp, status, param, *words, style="cohere")
    assert resp.get_json()["id"] == resp.headers["X-Request-ID"]


@pytest.mark.parametrize("path, body, status, param, words", VLLM)
def test_vllm_routes_answer_vllms_body(client, path, body, status, param, words):
    resp = client.post(path, json=body)
    expect_error(resp, status, param, *words, style="nested")
    error = resp.get_json()["error"]
    assert error["type"] == VLLM_TYPES[status] and error["code"] == status


@pytest.mark.parametrize("path, body, status, param, words", OLLAMA)
def test_ollama_routes_answer_the_flat_body(client, path, body, status, param, words):
    expect_error(client.post(path, json=body), status, param, *words, style="flat")


def test_undecodable_images_are_422_in_each_dialects_body(mm_client):
    """The 422 of the image routes: OpenAI's and the SigLIP service's nested body, vLLM's on its
    rerank request, Cohere's on Cohere's."""
    resp = mm_client.post("/v1/embeddings", json={"input": [BROKEN_PNG], "modality": "image"})
    expect_error(resp, 422, "input", "truncated", style="nested")
    expect_error(mm_client.post("/embed", json={"images": [BROKEN_PNG]}), 422, "images", "truncated", style="nested")
    vllm = mm_client.post("/rerank", json={"query": "a cat", "documents": [{"image": BROKEN_PNG}], "truncate_prompt_tokens": -1})
    expect_error(vllm, 422, "documents", "truncated", style="nested")
    assert vllm.get_json()["error"]["type"] == "UnprocessableEntityError"
    cohere = mm_client.post("/v2/rerank", json={"query": "a cat", "documents": [{"image": BROKEN_PNG}]})
    expect_error(cohere, 422, "documents", "truncated", style="cohere")


def test_a_shared_path_answers_in_the_dialect_of_the_request(client):
    """/rerank: TEI's request gets TEI's body, vLLM's gets vLLM's, Cohere's (and the plain API's)
    gets Cohere's; /embed: TEI's `inputs` get TEI's body, the SigLIP service's `images` and
    uploads the nested one; a malformed body gets the path's default (TEI's on /embed)."""
    tei = client.post("/rerank", json={"query": "", "texts": ["a"], "raw_scores": True})
    expect_error(tei, 400, "query", style="tei")
    vllm = client.post("/rerank", json={"query": "", "documents": ["a"], "truncate_prompt_tokens": -1})
    expect_error(vllm, 400, "query", style="nested")
    plain = client.post("/rerank", json={"query": "", "texts": ["a"]})
    expect_error(plain, 400, "query", style="cohere")
    versioned = client.post("/v1/rerank", json={"query": "", "texts": ["a"], "raw_scores": True})
    expect_error(versioned, 400, "query", style="cohere")  # /v1/rerank never answers TEI's shape
    images = client.post("/embed", json={"images": ["not an image"]})
    expect_error(images, 400, "images", style="nested")
    upload = client.post("/embed", data={"nothing": "x"}, content_type="multipart/form-data")
    assert upload.status_code == 400 and "error" in upload.get_json() and isinstance(upload.get_json()["error"], dict)
    malformed = client.post("/embed", data="{", content_type="application/json")
    expect_error(malformed, 400, None, "malformed JSON", style="tei")


def test_a_wrong_method_answers_in_the_style_of_its_path(client):
    tei = client.get("/embed_sparse")
    expect_error(tei, 405, None, "method GET", style="tei")
    assert "POST" in tei.headers["Allow"]
    expect_error(client.get("/v2/embed"), 405, None, "method GET", style="cohere")
    expect_error(client.get("/api/embed"), 405, None, "method GET", style="flat")
    expect_error(client.get("/v1/embeddings"), 405, None, "method GET", style="nested")
    expect_error(client.get("/no/such/path"), 404, None, "no route", style="nested")


def test_tei_answers_a_failed_forward_pass_with_424_backend(client, app, monkeypatch):
    """TEI's status for a backend failure (424, `Backend`); the other dialects' 500."""
    batcher = app.extensions["embedding_service"].engines.find(MINILM).batcher

    def boom(*_args, **_kwargs):
        raise RuntimeError("CUDA error: device-side assert at /opt/secret/path.py")

    monkeypatch.setattr(batcher.model, "forward", boom)
    tei = client.post("/embed", json={"inputs": "a forward pass that fails"})
    assert tei.status_code == 424 and tei.get_json()["error_type"] == "Backend", tei.get_json()
    assert "secret" not in tei.get_json()["error"]
    openai = client.post("/v1/embeddings", json={"input": "another forward pass that fails"})
    assert openai.status_code == 500 and openai.get_json()["error"]["type"] == "internal_error"
    monkeypatch.undo()
    assert client.post("/embed", json={"inputs": "served again"}).status_code == 200


# ------------------------------------------------------------------ the SDKs read them
def test_openai_sdk_reads_the_nested_error(live_url):
    import openai

    sdk = openai.OpenAI(base_url=f"{live_url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.embeddings.create(input=[], model=MINILM)
    assert caught.value.status_code == 400 and caught.value.param == "input"
    assert "empty list" in caught.value.message and caught.value.type == "invalid_request_error"
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.embeddings.create(input="a", model="nope")
    assert missing.value.param == "model" and "served models" in missing.value.message


def test_cohere_sdk_reads_coheres_error(live_url):
    import cohere

    sdk = cohere.ClientV2(base_url=live_url, api_key="unused")
    with pytest.raises(cohere.errors.NotFoundError) as missing:
        sdk.embed(texts=["a"], model="nope", input_type="search_query", embedding_types=["float"])
    assert missing.value.status_code == 404 and "served models" in missing.value.body["message"]
    with pytest.raises(cohere.errors.UnprocessableEntityError) as long:
        sdk.embed(texts=[LONG], model=MINILM, input_type="search_query", embedding_types=["float"], truncate="NONE")
    assert "at most 256" in long.value.body["message"] and long.value.body["id"]
    with pytest.raises(cohere.errors.BadRequestError) as bad:
        sdk.rerank(model=MINILM, query="q", documents=[])
    assert "documents" in bad.value.body["message"]


def test_huggingface_hub_shows_teis_error(live_url, monkeypatch):
    from huggingface_hub import InferenceClient, constants
    from huggingface_hub.errors import HfHubHTTPError

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the tests run offline; this is loopback
    hub = InferenceClient(model=live_url)
    with pytest.raises(HfHubHTTPError) as caught:
        hub.feature_extraction(LONG, truncate=False)
    assert caught.value.response.status_code == 422
    assert "at most 256" in caught.value.server_message and "at most 256" in str(caught.value)
