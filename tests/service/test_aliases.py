"""MODEL_ALIASES: extra names for served models (clients with a fixed model name), listed in
`/v1/models` and `/api/tags`, accepted on every route, with or without an Ollama tag; unknown
names stay a 404 listing the served ones; bad values stop the service at start-up."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import app_from, request_schema_errors, serve
from embedding_service.config.model_specs import model_specs
from embedding_service.config.settings import Settings, SettingsError

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
ALIASES = "text-embedding-ada-002=all-MiniLM-L6-v2,text-embedding-3-small=sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def aliased(tiny):
    return app_from({"MODEL_ALIASES": f"{ALIASES},small-qwen=qwen", "MODELS": f"{MINILM},qwen={tiny['qwen']}"})


@pytest.fixture(scope="module")
def url(aliased):
    url, server = serve(aliased)
    yield url
    server.shutdown()


def test_the_openai_sdk_with_a_fixed_model_name(url):
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key="unused")
    texts = ["a cat sits on the mat", "the stock market fell"]
    plain = client.embeddings.create(model=MINILM, input=texts)
    for name in ("text-embedding-ada-002", "text-embedding-3-small", "text-embedding-ada-002:latest"):
        aliased = client.embeddings.create(model=name, input=texts)
        assert aliased.model == MINILM
        np.testing.assert_array_equal([d.embedding for d in aliased.data], [d.embedding for d in plain.data])
    listed = {m.id: m for m in client.models.list().data}
    assert {MINILM, "all-MiniLM-L6-v2", "text-embedding-ada-002", "text-embedding-3-small", "qwen", "small-qwen"} == set(listed)
    assert listed["text-embedding-ada-002"].model_extra["root"] == MINILM and listed["small-qwen"].model_extra["root"] == "qwen"
    assert listed[MINILM].model_extra["aliases"] == ["all-MiniLM-L6-v2", "text-embedding-ada-002", "text-embedding-3-small"]
    for name in (MINILM, "text-embedding-3-small", "qwen"):  # models.retrieve: GET /v1/models/{model}, ids with "/" too
        assert client.models.retrieve(name).model_dump() == listed[name].model_dump()


def test_retrieving_an_unknown_model_is_a_404_listing_the_served_ones(url):
    from openai import NotFoundError, OpenAI

    with pytest.raises(NotFoundError) as caught:
        OpenAI(base_url=f"{url}/v1", api_key="unused").models.retrieve("text-embedding-3-large")
    error = caught.value.body
    assert error["code"] == 404 and error["param"] == "model" and "text-embedding-ada-002" in error["message"]


def test_aliases_everywhere(aliased):
    client = aliased.test_client()
    tags = [m["name"] for m in client.get("/api/tags").get_json()["models"]]
    assert "text-embedding-ada-002:latest" in tags and "small-qwen:latest" in tags
    assert client.post("/api/show", json={"model": "small-qwen"}).get_json()["model_info"]["general.basename"] == "qwen"
    qwen = client.post("/embed", json={"inputs": "a", "model": "qwen"}).get_json()
    assert client.post("/embed", json={"inputs": "a", "model": "small-qwen:latest"}).get_json() == qwen
    assert client.post("/v2/embed", json={"texts": ["a"], "model": "text-embedding-3-small"}).status_code == 200
    assert client.post("/rerank", json={"query": "q", "documents": ["a"], "model": "small-qwen"}).status_code == 200
    info = client.get("/info").get_json()["models"]
    assert info[1]["aliases"] == ["small-qwen"]


def test_unknown_names_stay_a_404_listing_the_served_ones(aliased):
    client = aliased.test_client()
    error = client.post("/v1/embeddings", json={"input": "a", "model": "text-embedding-3-large"}).get_json()["error"]
    assert error["code"] == 404 and error["param"] == "model"
    assert "text-embedding-ada-002" in error["message"] and "small-qwen" in error["message"]


def test_the_description_names_the_aliases_and_their_tags(aliased):
    client = aliased.test_client()
    spec = client.get("/openapi.json").get_json()
    for name, valid in (("text-embedding-ada-002", True), ("text-embedding-ada-002:v2", True), ("small-qwen:latest", True),
                        ("text-embedding-3-large", False), ("text-embedding-ada-002:", False), ("x:latest", False)):
        body = {"input": "a", "model": name}
        assert (not request_schema_errors(spec, "/v1/embeddings", body)) == valid, name
        assert client.post("/v1/embeddings", json=body).status_code == (200 if valid else 404), name


@pytest.mark.parametrize("value, words", [
    ("text-embedding-3-small", ["MODEL_ALIASES", "alias=model"]),
    ("=all-MiniLM-L6-v2", ["MODEL_ALIASES", "alias=model"]),
    ("a=b=c", ["MODEL_ALIASES"]),
])
def test_malformed_values_name_the_variable(value, words):
    with pytest.raises(SettingsError) as caught:
        Settings.from_mapping({"MODEL_ALIASES": value})
    for word in words:
        assert word in str(caught.value)


def test_an_alias_must_name_a_served_model_and_be_free():
    with pytest.raises(SettingsError, match=r"MODEL_ALIASES: 'x=text-embedding-ada-002' names no served model .*all-MiniLM-L6-v2"):
        model_specs(Settings.from_mapping({"MODEL_ALIASES": "x=text-embedding-ada-002"}))
    with pytest.raises(SettingsError, match="used by both"):
        model_specs(Settings.from_mapping({"MODELS": f"{MINILM},qwen=org/qwen", "MODEL_ALIASES": "qwen=all-MiniLM-L6-v2"}))
    specs = model_specs(Settings.from_mapping({"MODEL_ALIASES": "m=all-MiniLM-L6-v2,m=all-MiniLM-L6-v2,all-MiniLM-L6-v2=all-MiniLM-L6-v2"}))
    assert specs[0].aliases == ("all-MiniLM-L6-v2", "m")  # repeats and a model's own names add nothing
