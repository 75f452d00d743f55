"""Small edges a hostile client probes: a compressed body is refused with 415 naming the encoding
(never inflated), a path with doubled slashes is a JSON 404 and never a redirect to the client's
Host, and a megabyte model name is not echoed back whole."""

from __future__ import annotations

import gzip

import orjson
from support.errors import expect_error


def test_a_compressed_body_is_415_naming_the_encoding(client):
    body = gzip.compress(orjson.dumps({"input": "a"}))
    resp = client.post("/v1/embeddings", data=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert resp.status_code == 415 and "Content-Encoding 'gzip'" in resp.get_json()["error"]["message"]
    plain = client.post("/v1/embeddings", json={"input": "a"}, headers={"Content-Encoding": "identity"})
    assert plain.status_code == 200


def test_no_redirect_is_built_from_the_host_header(client):
    resp = client.get("/v1/models/%2Fetc", headers={"Host": "evil.example"})
    assert resp.status_code == 404 and "Location" not in resp.headers
    assert resp.get_json()["error"]["code"] == 404
    resp = client.get("/v1//models", headers={"Host": "evil.example"})
    assert resp.status_code not in (301, 302, 307, 308) and "Location" not in resp.headers


def test_a_long_unknown_model_name_is_not_echoed_whole(client):
    name = "m" * 100_000
    resp = client.post("/v1/embeddings", json={"input": "a", "model": name})
    assert resp.status_code == 404
    message = resp.get_json()["error"]["message"]
    assert "(100000 characters)" in message and len(message) < 2_000


def test_messages_name_fields_not_internal_types(client):
    for path, body, shown in [("/embed", {"inputs": ["a", 5]}, "inputs"), ("/tokenize", {"inputs": 5}, "inputs")]:
        message = expect_error(client.post(path, json=body), 400, "inputs", style="tei")  # TEI's routes
        assert message.startswith(shown), message
        assert "constrained" not in message and "function-" not in message, message


def test_token_ids_must_be_integers_not_numbers_with_a_fraction_or_exponent(client):
    """TEI (serde: `expected u32`) and OpenAI take integer token ids; 1.0 and 1e3 were taken as 1 and 1000."""
    cases = [
        ("/decode", b'{"ids": [1.0, 2]}', "ids", "ids[0] is 1.0"),
        ("/decode", b'{"ids": [[5], [1e3]]}', "ids", "ids[1][0] is 1000.0"),
        ("/v1/embeddings", b'{"input": [101, 2.0]}', "input", "input[1] is 2.0"),
        ("/v1/embeddings", b'{"input": [[101, 102], [3, 1e3]]}', "input", "input[1][1] is 1000.0"),
    ]
    for path, body, param, words in cases:
        resp = client.post(path, data=body, content_type="application/json")
        expect_error(resp, 400, param, words, "token ids are integers")
    assert client.post("/decode", json={"ids": [101, 102]}).status_code == 200
