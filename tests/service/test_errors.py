"""The error table (errors.py) on the text routes: each bad request gets its exact status and body, nothing leaks,
and a good request succeeds right after."""

from __future__ import annotations

import pytest

GOOD = ("/v1/embeddings", {"input": ["a cat sits on the mat"]})


def assert_error(resp, status: int, param=None, fragment: str = "", style: str = "nested"):
    """The exact error body of `style`: the nested one (`message`, `type`, `param`, `code`) or
    TEI's (`error`, `error_type`, the message naming `param`)."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    if style == "tei":
        assert set(body) == {"error", "error_type"} and body["error_type"] == "Validation", body
        err = {"message": body["error"]}
        assert param is None or param in err["message"], err
    else:
        assert set(body) == {"error"}
        err = body["error"]
        assert set(err) == {"message", "type", "param", "code"}
        assert err["code"] == status
        assert err["param"] == param
    assert fragment.lower() in err["message"].lower()
    assert "Traceback" not in err["message"] and "site-packages" not in err["message"]
    return err


def assert_still_serving(client):
    resp = client.post(GOOD[0], json=GOOD[1])
    assert resp.status_code == 200
    assert len(resp.get_json()["data"][0]["embedding"]) == 384


JSON_CASES = [
    # (path, body, status, param, message fragment)
    ("/v1/embeddings", {"input": []}, 400, "input", "empty list"),
    ("/v1/embeddings", {"input": ""}, 400, "input", "empty string"),
    ("/v1/embeddings", {"input": ["ok", ""]}, 400, "input", "input[1] is an empty string"),
    ("/v1/embeddings", {"input": 5}, 400, "input", "input must be"),
    ("/v1/embeddings", {"input": [1, "a"]}, 400, "input", "input must be"),
    ("/v1/embeddings", {"input": [[]]}, 400, "input", "empty list of token ids"),
    ("/v1/embeddings", {}, 400, "input", "missing required field 'input'"),
    ("/v1/embeddings", {"input": "a", "encoding_format": "xml"}, 400, "encoding_format", "float"),
    ("/v1/embeddings", {"input": "a", "input_type": "passage"}, 400, "input_type", "query"),
    ("/v1/embeddings", {"input": "a", "dimensions": 0}, 400, "dimensions", "greater than or equal to 1"),
    ("/v1/embeddings", {"input": "a", "dimensions": 385}, 400, "dimensions", "between 1 and 384"),
    ("/v1/embeddings", {"input": "a", "dimensions": "64"}, 400, "dimensions", "integer"),
    ("/v1/embeddings", {"input": "a", "temperature": 1}, 400, "temperature", "unknown field 'temperature'"),
    ("/v1/embeddings", {"input": [[1, 999999]]}, 400, "input", "outside the vocabulary"),
    ("/v1/embeddings", {"input": "a", "model": "text-embedding-3-small"}, 404, "model", "sentence-transformers/all-MiniLM-L6-v2"),
    ("/v1/embeddings", {"input": "a", "modality": "image"}, 400, "input", "MODEL_NAME"),
    ("/embed", {"inputs": "a", "truncate": False, "truncation_direction": "up"}, 400, "truncation_direction", "left"),
    ("/embed", {"inputs": "a", "prompt_name": "query"}, 400, "prompt_name", "no prompt named 'query'"),
    ("/embed", {"inputs": "a", "normalize": "yes"}, 400, "normalize", "boolean"),
    ("/embed", {"inputs": "word " * 400, "truncate": False}, 422, "inputs", "at most 256"),
    ("/embed", {"images": ["data:image/png;base64,AAAA"]}, 400, "images", "MODEL_NAME"),
    ("/embed", {"nothing": 1}, 400, "inputs", '"inputs"'),
    ("/embed", [1, 2], 400, None, "JSON object"),
    ("/embed_text", {"texts": ["a"], "text": "b"}, 400, "texts", "exactly one"),
    ("/embed_text", {}, 400, "texts", "exactly one"),
    ("/embed_text", {"texts": "a"}, 400, "texts", "list"),
    ("/embed_text", {"texts": ["a"], "model": "nope"}, 404, "model", "served models"),
]


@pytest.mark.parametrize("path,body,status,param,fragment", JSON_CASES)
def test_bad_json_requests(client, path, body, status, param, fragment):
    tei = path == "/embed" and not (isinstance(body, dict) and "images" in body)  # TEI's request on a shared path
    assert_error(client.post(path, json=body), status, param, fragment, style="tei" if tei else "nested")
    assert_still_serving(client)


def test_malformed_json(client):
    assert_error(client.post("/v1/embeddings", data='{"input": [', content_type="application/json"), 400, None, "malformed JSON")
    assert_still_serving(client)


def test_wrong_content_type(client):
    resp = client.post("/v1/embeddings", data="input=hello", content_type="application/x-www-form-urlencoded")
    assert_error(resp, 415, None, "application/json")
    assert_still_serving(client)


def test_unknown_route_and_wrong_method(client):
    assert_error(client.get("/v2/embeddings"), 404, None, "no route GET /v2/embeddings")
    resp = client.get("/v1/embeddings")
    assert_error(resp, 405, None, "method GET")
    assert "POST" in resp.headers["Allow"]
    assert_still_serving(client)


def test_body_over_max_content_length(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 2048)
    resp = client.post("/v1/embeddings", json={"input": ["x" * 4000]})
    assert_error(resp, 413, None, "MAX_CONTENT_LENGTH")
    monkeypatch.undo()
    assert_still_serving(client)


def test_too_many_inputs(client):
    resp = client.post("/v1/embeddings", json={"input": ["a"] * 2049})
    err = assert_error(resp, 413, "input", "2049")
    assert "2048" in err["message"] and "MAX_CLIENT_BATCH_SIZE" in err["message"]
    assert_still_serving(client)


def test_ollama_routes_use_flat_errors(client):
    resp = client.post("/api/embed", json={"input": []})
    assert resp.status_code == 400
    assert resp.get_json() == {"error": "input must not be an empty list"}
    resp = client.post("/api/embed", json={"input": "a", "model": "llama3"})
    assert resp.status_code == 404 and isinstance(resp.get_json()["error"], str)
    resp = client.post("/api/embeddings", data="{", content_type="application/json")
    assert resp.status_code == 400 and resp.get_json()["error"].startswith("malformed JSON")
    resp = client.post("/api/embed", json={"input": "word " * 400, "truncate": False})
    assert resp.status_code == 422 and "256" in resp.get_json()["error"]
    assert_still_serving(client)


def test_unexpected_error_is_500_with_request_id_and_no_detail(client, app, monkeypatch):
    engines = app.extensions["embedding_service"].engines
    batcher = engines.find("sentence-transformers/all-MiniLM-L6-v2").batcher

    def boom(items, *lengths):
        raise RuntimeError("secret detail /srv/models/weights.bin")

    monkeypatch.setattr(batcher, "run", boom)
    resp = client.post("/v1/embeddings", json={"input": "a"}, headers={"X-Request-ID": "req-42"})
    err = assert_error(resp, 500, None, "req-42")
    assert "secret" not in err["message"] and "/srv" not in err["message"]
    assert resp.headers["X-Request-ID"] == "req-42"
    monkeypatch.undo()
    assert_still_serving(client)
