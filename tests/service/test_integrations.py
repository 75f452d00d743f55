"""The integration matrix: the client libraries people use (the OpenAI, Cohere and Ollama SDKs,
huggingface_hub, LangChain, LlamaIndex, Haystack, LiteLLM, Chroma), unmodified, against one real
Gunicorn server, plus every snippet of the documentation's client-library page (docs/clients.md) as written.

The clients live in their own virtualenv, `.venv-integrations` (`make integrations`, which
`make test` runs; their pins clash with the service's). Each library's cases run in one
subprocess of that venv (`integration_clients.py`), which hands back what the client returned;
this side compares it with the plain routes: vectors with `POST /v1/embeddings` (cosine
>= 0.9999), rankings with `POST /rerank` and the relevant document first. huggingface_hub also runs
from the service's own venv, a second major version of it.

A case is skipped, saying why, only when its library cannot be imported and the venv was not
installed in full; once `make integrations` has succeeded (its stamp exists), or with
REQUIRE_INTEGRATIONS=1, that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import requests

from support import integration_clients as clients
from support import tiny_classifiers, tiny_models
from test_gunicorn import ROOT, wait_healthy
from test_production import start_gunicorn, stop

pytestmark = [pytest.mark.slow, pytest.mark.integration]

VENV = os.path.join(ROOT, ".venv-integrations")
STAMP = os.path.join(VENV, ".installed")
from support.paths import SUPPORT  # noqa: E402
from support.venvs import venv_python  # noqa: E402

CLIENT_SCRIPT = os.path.join(SUPPORT, "integration_clients.py")
README = os.path.join(ROOT, "docs", "clients.md")  # the client-library page: every snippet runs
ALIASES = ("text-embedding-ada-002", "text-embedding-3-small")
QWEN_QUERY = "Instruct: {instruction}\nQuery:{text}"  # Qwen3-Embedding's official query format
GROUP_SECONDS = 600
README_SNIPPETS = {
    "openai", "openai/instruction", "cohere", "ollama", "huggingface_hub", "langchain/openai", "langchain/ollama",
    "langchain/huggingface", "llama_index", "haystack", "litellm", "chromadb",
}
SNIPPET = re.compile(r"<!-- tested: (\S+) -->\n```python\n(.*?)```", re.S)
# The client's environment: without HF_HUB_OFFLINE (huggingface_hub then refuses even a loopback
# URL), telemetry off, and a proxy that does not exist for every host but loopback, so a library
# that phones home fails here instead of reaching the internet.
PROXIES = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1,localhost"}
CLIENT_ENV = {
    **PROXIES, **{name.lower(): value for name, value in PROXIES.items()},
    "ANONYMIZED_TELEMETRY": "False", "HAYSTACK_TELEMETRY_ENABLED": "False", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "TOKENIZERS_PARALLELISM": "false",
}


def installed() -> bool:
    """Every client must import: REQUIRE_INTEGRATIONS=1, or `make integrations` succeeded (unless
    INTEGRATIONS_PYTHON names another interpreter to run the clients with)."""
    if os.environ.get("REQUIRE_INTEGRATIONS"):
        return True
    return not os.environ.get("INTEGRATIONS_PYTHON") and os.path.exists(STAMP)


def clients_python() -> str:
    return venv_python(VENV, "requirements-integrations.txt", "integrations", "INTEGRATIONS_PYTHON", "REQUIRE_INTEGRATIONS",
                       "the client libraries of the integration matrix")


def readme_snippets() -> dict[str, str]:
    with open(README) as handle:
        return dict(SNIPPET.findall(handle.read()))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """MiniLM (the default), a tiny Qwen3-Embedding as `qwen`, a tiny three-label classifier as
    `sentiment` (TEI's `/predict`), OpenAI's names as aliases of MiniLM."""
    clients_python()  # skip before starting anything when the clients are not there
    folder = tmp_path_factory.mktemp("integrations")
    qwen = tiny_models.build_qwen3_embedding(str(folder / "qwen3-embedding"))
    sentiment = tiny_classifiers.build_classifier(str(folder / "sentiment"))
    aliases = ",".join(f"{alias}={clients.MODEL}" for alias in ALIASES)
    models = f"sentence-transformers/all-MiniLM-L6-v2,qwen={qwen},sentiment={sentiment}"
    url, proc = start_gunicorn(folder, WORKERS="1", MODELS=models, MODEL_ALIASES=aliases)
    try:
        wait_healthy(url, proc)
        yield url
    except AssertionError:
        log = folder / f"gunicorn-{url.rsplit(':', 1)[1]}.log"
        raise AssertionError(f"the server did not start:\n{log.read_text()[-3000:]}") from None
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def results(server, tmp_path_factory):
    """(group, python) -> {case: result}: each library's cases run once, in one subprocess."""
    cache: dict = {}
    folder = tmp_path_factory.mktemp("client-runs")

    def get(group: str, python: str) -> dict:
        if (group, python) not in cache:
            snippets = {name: code for name, code in readme_snippets().items() if name.split("/")[0] == group}
            out = folder / f"{group}-{len(cache)}.json"
            request = {"url": server, "group": group, "snippets": snippets, "out": str(out)}
            env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
            try:
                done = subprocess.run(
                    [python, CLIENT_SCRIPT], input=json.dumps(request), env={**env, **CLIENT_ENV}, cwd=folder,
                    capture_output=True, text=True, timeout=GROUP_SECONDS,
                )
                failed = "" if out.exists() else f"exit status {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
            except subprocess.TimeoutExpired:
                failed = f"no results within {GROUP_SECONDS} s"
            cache[(group, python)] = {"runner": failed} if failed else json.loads(out.read_text())
        assert "runner" not in cache[(group, python)], f"the {group} clients failed: {cache[(group, python)]['runner']}"
        return cache[(group, python)]

    return get


def outcome(results, group: str, name: str, python: str) -> dict:
    result = results(group, python)[name]
    if "missing" in result:
        if installed():
            pytest.fail(f"{group}: {result['missing']}, though the integrations venv was installed")
        pytest.skip(f"{group}: {result['missing']}")
    assert "error" not in result, f"{group} {name}: {result['error']}"
    return result


def plain_vectors(url: str, texts: list, model: str = clients.MODEL) -> np.ndarray:
    resp = requests.post(f"{url}/v1/embeddings", json={"input": texts, "model": model}, timeout=60)
    assert resp.status_code == 200, resp.text
    return np.array([item["embedding"] for item in resp.json()["data"]], dtype=np.float64)


def cosines(a, b) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def check_vectors(url: str, result: dict) -> None:
    texts = result["texts"]
    if "instruction" in result:  # the instruction fills the model's query template
        texts = [QWEN_QUERY.format(instruction=result["instruction"], text=t) for t in texts]
    expected = plain_vectors(url, texts, result.get("model", clients.MODEL))
    vectors = np.asarray(result["vectors"], dtype=np.float64)
    assert vectors.shape == expected.shape
    assert cosines(vectors, expected).min() >= 0.9999, cosines(vectors, expected)


def check_ranking(url: str, result: dict) -> None:
    resp = requests.post(f"{url}/rerank", json={"query": result["query"], "documents": result["documents"]}, timeout=60)
    assert resp.status_code == 200, resp.text
    plain = [item["index"] for item in resp.json()["results"]]
    assert result["documents"][result["ranked"][0]] == clients.RELEVANT
    assert result["ranked"] == plain[: len(result["ranked"])]


def check_scores(url: str, result: dict) -> None:
    """sentence_similarity: the cosines of the first text with the others, under the default model."""
    vectors = plain_vectors(url, result["texts"])
    np.testing.assert_allclose(result["scores"], cosines(vectors[:1].repeat(len(vectors) - 1, 0), vectors[1:]), atol=1e-4)


def check_names(url: str, result: dict) -> None:
    """Model listings (OpenAI ids, Ollama `name:tag`): the served model and every alias."""
    bare = {name.split(":")[0] for name in result["names"]}
    assert {clients.MODEL, *ALIASES} <= bare, result["names"]


def check_quantized(url: str, result: dict) -> None:
    """Cohere's embedding types, as the SDK parses them: int8/uint8 follow the float vector; the
    binary types are its sign bits packed 8 to a byte (ubinary), minus 128 (binary)."""
    floats = np.asarray(result["vectors"])
    for kind, low, high in (("int8", -128, 127), ("uint8", 0, 255)):
        values = np.asarray(result["types"][kind], dtype=np.float64)
        assert values.shape == floats.shape and values.min() >= low and values.max() <= high
        assert min(np.corrcoef(v, f)[0, 1] for v, f in zip(values, floats)) > 0.99
    ubinary = np.asarray(result["types"]["ubinary"], dtype=np.uint8)
    np.testing.assert_array_equal(np.unpackbits(ubinary, axis=1), floats > 0)
    np.testing.assert_array_equal(np.asarray(result["types"]["binary"]) + 128, ubinary)


def check_labels(url: str, result: dict) -> None:
    """text_classification: the best label and its probability as `/predict` gives them."""
    resp = requests.post(f"{url}/predict", json={"inputs": result["text"]}, timeout=60)
    assert resp.status_code == 200, resp.text
    best = resp.json()[0]
    assert result["labels"][0]["label"] == best["label"] and abs(result["labels"][0]["score"] - best["score"]) < 1e-6


CHECKS = {"vectors": check_vectors, "ranked": check_ranking, "scores": check_scores, "names": check_names, "types": check_quantized,
          "labels": check_labels}


def check(url: str, result: dict) -> None:
    keys = [key for key in CHECKS if key in result]
    assert keys, f"the case returned nothing to check: {sorted(result)}"
    for key in keys:
        CHECKS[key](url, result)


SPECIAL = {"langchain_openai_default_token_ids", "ollama_catalogue"}
CASES = [
    pytest.param(group, name, id=f"{group}-{name}") for group, cases in clients.CASES.items() for name in cases
    if name not in SPECIAL and group != "huggingface_hub"
]


@pytest.mark.parametrize("group,name", CASES)
def test_client_agrees_with_the_plain_routes(server, results, group, name):
    check(server, outcome(results, group, name, clients_python()))


@pytest.mark.parametrize("name", [*clients.CASES["huggingface_hub"], "huggingface_hub"])
@pytest.mark.parametrize("venv", ["integrations", "service"])
def test_huggingface_hub_against_the_bare_host(server, results, venv, name):
    """InferenceClient(model="http://host:port") posts to TEI's `POST /`: huggingface_hub 1.x from
    the integrations venv and the service's own pin (2.x); `huggingface_hub` is README's snippet."""
    python = clients_python() if venv == "integrations" else sys.executable
    check(server, outcome(results, "huggingface_hub", name, python))


def test_readme_shows_exactly_the_tested_snippets():
    snippets = readme_snippets()
    assert set(snippets) == README_SNIPPETS
    assert all(clients.README_BASE in code for code in snippets.values())


@pytest.mark.parametrize("name", sorted(README_SNIPPETS - {"huggingface_hub"}))
def test_readme_snippet(server, results, name):
    result = outcome(results, name.split("/")[0], name, clients_python())
    assert "vectors" in result
    check(server, result)


def test_ollama_catalogue_lists_shows_and_runs_the_served_models(server, results):
    """`ollama list` (`/api/tags`), `ollama ps` (`/api/ps`) and `ollama show` (`/api/show`) as the SDK parses them."""
    result = outcome(results, "ollama", "ollama_catalogue", clients_python())
    check_names(server, result)
    assert all(":" in name for name in result["names"] + result["running"])
    assert any(name.split(":")[0].endswith(clients.MODEL) for name in result["running"])
    info = result["show"]["modelinfo"]
    assert info[f"{info['general.architecture']}.embedding_length"] == plain_vectors(server, ["a"]).shape[1]
    assert result["show"]["details"]["family"] == info["general.architecture"]


def test_langchain_openai_default_sends_tiktoken_ids(server, results, minilm_path):
    """What README warns about: with `check_embedding_ctx_length=True` langchain-openai sends
    tiktoken's cl100k ids; ids inside MiniLM's vocabulary embed as a meaningless vector (200), an id
    outside it is a 400."""
    from transformers import AutoConfig

    vocabulary = AutoConfig.from_pretrained(minilm_path).vocab_size
    result = outcome(results, "langchain", "langchain_openai_default_token_ids", clients_python())
    assert max(result["ids"]) < vocabulary <= max(result["large_ids"])
    sent = requests.post(f"{server}/v1/embeddings", json={"input": [result["ids"]]}, timeout=60).json()
    assert cosines([result["token_vector"]], [sent["data"][0]["embedding"]])[0] >= 0.9999  # the ids were sent
    assert cosines([result["token_vector"]], plain_vectors(server, [result["text"]]))[0] < 0.5
    assert result["large_outcome"]["status"] == 400, result["large_outcome"]
