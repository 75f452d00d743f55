"""An independent contract run: the schemathesis command line against a real loopback server,
every check on and schemathesis' own defaults (no expected-status allowances, unlike the
in-process run in tests/service/test_fuzz.py). It passes only if /openapi.json says exactly what the
service accepts: every schema-valid request answered 2xx, every schema-violating one refused
with a 4xx it documents, every response as described. One hook (support/schemathesis_hooks.py)
sends integral floats in lists as the integers they equal: token ids are refused as 1.0, which
JSON Schema cannot say. The fast tests below pin the cases a generator rarely draws, on a
deployment of several text models.

Bounded: FUZZ_EXAMPLES examples per operation (30 by default, deterministic; set it for a deeper,
random run), one worker, a wall-clock limit. Nothing is written to the work tree: schemathesis
runs in a temporary directory (its `.hypothesis/` and `.schemathesis/` go there), with an empty
configuration file of its own and no example database.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from jsonschema import Draft202012Validator

from conftest import app_from, request_schema_errors, serve
from support.tiny_classifiers import shared_classifier, shared_token_classifier
from support.tiny_retrieval import shared_bge_m3

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Wall-clock limit of the command (about 40 s at 30 examples on two busy cores).
TIMEOUT_S = 240


@pytest.fixture(scope="module")
def url():
    """The default deployment (the bundled MiniLM, default limits) plus a tiny BGE-M3, a tiny
    classifier and a tiny token classifier (so the sparse, multi-vector and classification routes
    and tasks have a model to answer with), on a threaded loopback server."""
    url, server = serve(app_from({"MODELS": f"sentence-transformers/all-MiniLM-L6-v2,bge-m3={shared_bge_m3()},"
                                            f"sentiment={shared_classifier()},ner={shared_token_classifier()}"}))
    yield url
    server.shutdown()


@pytest.mark.slow
def test_schemathesis_cli_finds_nothing(url, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text("")  # schemathesis' defaults, whatever configuration lies above this folder
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color",
        "run", f"{url}/openapi.json",
        "--checks", "all",
        "--max-examples", str(EXAMPLES),
        "--workers", "1",
        "--request-timeout", "20",
    ]
    # Deterministic (which keeps no example database) unless a deeper, random run is asked for.
    command += ["--generation-database", "none"] if "FUZZ_EXAMPLES" in os.environ else ["--generation-deterministic"]
    # The one hook: integral floats in lists sent as the integers they equal (token ids; see the module).
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": "support.schemathesis_hooks",
           "PYTHONPATH": os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")])}
    try:
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        pytest.fail(f"schemathesis ran past {TIMEOUT_S} s:\n{output[-20_000:]}")
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"schemathesis exited with {done.returncode}:\n{_short(output)}"
    assert "No issues found" in output, _short(output)


def _short(output: str, width: int = 400) -> str:
    """The output with over-long lines (generated bodies) cut, its last 30,000 characters."""
    return "\n".join(line if len(line) <= width else line[:width] + " …" for line in output.splitlines())[-30_000:]


# ------------------------------------------------------------------ the cases, one by one
#: (path, body, whether the description calls it valid). The `app` fixture serves MiniLM (the
#: default, 384 dimensions, no prompts) and tiny models, "qwen" among them (32 dimensions, a
#: 400-token vocabulary, prompts "query" and "document"); no image model and no reranker.
CASES = [
    ("/rerank", {"query": "\x1c", "documents": ["a"]}, False),  # whitespace to Python, not to ECMA-262
    ("/rerank", {"query": "\ufeff", "documents": ["a"]}, True),  # the reverse
    ("/rerank", {"query": "q", "documents": [{}]}, False),
    ("/rerank", {"query": "q", "documents": [{"text": "a", "id": 7}]}, True),
    ("/rerank", {"query": "q", "documents": [{"text": ""}]}, False),
    ("/rerank", {"query": "q", "documents": [{"image": "x"}]}, False),  # no image model here
    ("/rerank", {"query": "q", "documents": ["a"], "rank_fields": ["title"]}, True),
    ("/rerank", {"query": "q", "documents": [{"text": "a"}], "rank_fields": []}, True),
    ("/rerank", {"query": "q", "documents": ["a"], "return_documents": True, "return_text": False}, False),
    ("/rerank", {"query": "q", "documents": ["a"], "return_documents": True, "return_text": True}, True),
    ("/rerank", {"query": "q", "documents": ["a"], "top_n": 0}, False),
    ("/rerank", {"query": "q", "documents": ["a"], "top_n": 1.0}, True),
    ("/embed", {"inputs": "a", "truncation_direction": "LEFT"}, True),
    ("/embed", {"inputs": "a", "truncation_direction": "lefty"}, False),
    ("/embed", {"inputs": "a", "prompt_name": "query"}, False),  # MiniLM has no prompts
    ("/embed", {"inputs": "a", "model": "qwen", "prompt_name": "query"}, True),
    ("/embed", {"images": ["x"]}, False),
    ("/embed_text", {"text": "a", "texts": ["b"]}, False),
    ("/v1/embeddings", {"input": "a", "modality": "image"}, False),
    ("/v1/embeddings", {"input": "a", "instruction": "i", "input_type": "document"}, False),
    ("/v1/embeddings", {"input": "a", "instruction": "i", "input_type": "query"}, True),
    ("/v1/embeddings", {"input": [5, 6], "instruction": "i", "input_type": "document"}, True),  # ids: no prompt
    ("/v1/embeddings", {"input": "a", "dimensions": 100}, True),
    ("/v1/embeddings", {"input": "a", "model": "qwen", "dimensions": 100}, False),
    ("/v1/embeddings", {"input": "a", "model": "qwen", "dimensions": 32}, True),
    ("/v1/embeddings", {"input": [500]}, True),
    ("/v1/embeddings", {"input": [500], "model": "qwen"}, False),
    ("/api/embed", {"input": "a", "dimensions": 0}, False),
    # With `rank_fields` any object is a document: the named fields it holds, or empty text.
    ("/rerank", {"query": "q", "documents": [{"title": "a"}], "rank_fields": ["title"]}, True),
    ("/rerank", {"query": "q", "documents": [{"text": "a"}], "rank_fields": ["title"]}, True),
]


@pytest.fixture(scope="module")
def spec(app):
    return app.test_client().get("/openapi.json").get_json()


@pytest.mark.parametrize("path, body, valid", CASES)
def test_the_description_says_what_the_service_accepts(client, spec, path, body, valid):
    errors = request_schema_errors(spec, path, body)
    assert (not errors) == valid, errors
    status = client.post(path, json=body).status_code
    assert status == (200 if valid else 400)


def test_no_image_model_no_image_requests(spec):
    """Without an image model the description offers no image input, no upload and no image limits."""
    embed = spec["paths"]["/embed"]["post"]
    assert set(embed["requestBody"]["content"]) == {"application/json"}
    assert "ImageEmbedRequest" not in spec["components"]["schemas"]
    assert "IMAGE_MAX_URLS" not in embed["x-limits"] and embed["x-limits"]["MAX_INPUT_CHARS"] > 0
    assert "x-requires-image-model" not in str(spec["components"]["schemas"]["OpenAIEmbeddingRequest"])


def test_405_is_the_nested_error_even_on_ollama_routes(client, spec):
    body = client.get("/api/embed").get_json()
    schema = spec["paths"]["/api/embed"]["post"]["responses"]["405"]["content"]["application/json"]["schema"]
    assert not list(Draft202012Validator({**schema, "components": spec["components"]}).iter_errors(body))
