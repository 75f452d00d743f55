"""Routes declare their own OpenAPI operation and error style (api.routing); /openapi.json is
generated from the URL map, so every served route is documented and a new one appears by itself."""

from __future__ import annotations

from typing import Optional

import pytest
from flask import Flask
from pydantic import BaseModel

from embedding_service.http.json_io import json_body, json_response
from embedding_service.http.budgets import ONE_ITEM, BodyLimit, Budget
from embedding_service.http.routing import ApiBlueprint, Operation
from embedding_service.domain.errors import InvalidInput
from embedding_service.http.error_handlers import register_error_handlers
from embedding_service.http.errors import ErrorStyle
from embedding_service.http.openapi import Deployment, build_spec, documented_paths, openapi_path
from embedding_service.http.schemas import Strict, parse

#: Served but deliberately undocumented: Flask's static files and Swagger UI's own files.
UNDOCUMENTED = {"static", "docs.docs_asset"}


class EchoRequest(Strict):
    text: str
    model: Optional[str] = None


class EchoResponse(BaseModel):
    echoed: str


def fresh_app(style: ErrorStyle = ErrorStyle.FLAT) -> Flask:
    """A bare app with one new blueprint (named "ollama" on purpose: the name decides nothing)."""
    bp = ApiBlueprint("ollama", __name__, tag="Echo dialect", error_style=style)

    @bp.operation("POST", "/echo", summary="Echo a text", request=EchoRequest, response=EchoResponse, errors=(400,),
                  budget=Budget(BodyLimit.TEXT, "text", {"text": ONE_ITEM}))
    def echo():
        req = parse(EchoRequest, json_body())
        if req.text == "fail":
            raise InvalidInput("text must not be 'fail'", param="text")
        return json_response({"echoed": req.text})

    @bp.operation("GET", "/echo/<int:count>", summary="Echo a number", tag="Numbers", error_style=ErrorStyle.NESTED)
    def count(count: int):
        raise InvalidInput(f"no echo for {count}", param="count")

    @bp.get("/hidden")
    def hidden():
        raise InvalidInput("hidden")

    app = Flask("fresh")
    register_error_handlers(app)
    app.register_blueprint(bp)
    return app


def test_a_new_route_appears_with_its_schemas():
    app = fresh_app()
    spec = build_spec(Deployment(model_names=["", "m"], text_model_names=["", "m"], max_chars=10), app)
    assert set(spec["paths"]) == {"/echo", "/echo/{count}"} == documented_paths(app)
    post = spec["paths"]["/echo"]["post"]
    assert post["summary"] == "Echo a text" and post["tags"] == ["Echo dialect"] and post["operationId"] == "post_/echo"
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/EchoRequest"}
    assert post["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/EchoResponse"}
    assert set(post["responses"]) == {"200", "400", "405", "500"}
    assert post["responses"]["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OllamaError"}
    request = spec["components"]["schemas"]["EchoRequest"]
    assert request["required"] == ["text"] and request["additionalProperties"] is False
    assert request["properties"]["model"]["anyOf"][0]["enum"] == ["", "m"]  # tightened for the deployment
    assert spec["components"]["schemas"]["EchoResponse"]["properties"]["echoed"]["type"] == "string"
    get = spec["paths"]["/echo/{count}"]["get"]
    assert get["tags"] == ["Numbers"] and "requestBody" not in get and set(get["responses"]) == {"200", "500"}
    assert get["parameters"] == [{"name": "count", "in": "path", "required": True, "schema": {"type": "integer"}}]
    assert get["responses"]["500"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}


def test_a_route_taking_a_body_must_declare_its_budget():
    bp = ApiBlueprint("unbudgeted", __name__, tag="Echo dialect")
    with pytest.raises(ValueError, match="POST /echo declares no budget"):
        bp.operation("POST", "/echo", summary="Echo a text", request=EchoRequest, response=EchoResponse)(lambda: None)
    bp.operation("GET", "/echo", summary="Echo nothing")(lambda: None)  # a GET takes no body: bounded already


def test_error_shape_follows_the_declared_style_not_the_blueprint_name():
    client = fresh_app(ErrorStyle.FLAT).test_client()
    assert client.post("/echo", json={"text": "a"}).get_json() == {"echoed": "a"}
    assert client.post("/echo", json={"text": "fail"}).get_json() == {"error": "text must not be 'fail'"}
    assert client.post("/echo", json={"text": "a", "nope": 1}).get_json() == {"error": "unknown field 'nope'"}
    nested = client.get("/echo/3").get_json()["error"]  # the operation overrides the blueprint's style
    assert nested == {"message": "no echo for 3", "type": "invalid_request_error", "param": "count", "code": 400}
    assert isinstance(client.get("/hidden").get_json()["error"], dict)  # no operation: the default style
    nowhere = client.get("/nowhere")  # no route at the path: the default style
    assert nowhere.status_code == 404 and nowhere.get_json()["error"]["code"] == 404
    wrong_method = client.get("/echo")  # a 405 speaks the style of the routes at its path
    assert wrong_method.status_code == 405 and wrong_method.get_json() == {"error": "method GET is not allowed on /echo"}
    nested_client = fresh_app(ErrorStyle.NESTED).test_client()
    assert nested_client.post("/echo", json={"text": "fail"}).get_json()["error"]["param"] == "text"


def test_blueprint_defaults_and_one_operation_per_view():
    bp = ApiBlueprint("extra", __name__, tag="Extra", error_style=ErrorStyle.FLAT)

    budget = Budget(BodyLimit.TEXT, "text", {"text": ONE_ITEM})

    @bp.operation("POST", "/a", "/b", summary="Twice", request=EchoRequest, budget=budget)
    def view():
        return ""

    assert view.operation == Operation(
        summary="Twice", tag="Extra", requests=(EchoRequest,), error_style=ErrorStyle.FLAT, budget=budget
    )
    with pytest.raises(ValueError, match="already declares"):
        bp.operation("POST", "/c", summary="Something else", budget=budget)(view)


def test_every_served_route_is_documented(app):
    """Every rule of the real app's URL map (but static files and Swagger UI's assets) is in
    /openapi.json with each of its methods, and nothing else is."""
    served = {
        (openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in UNDOCUMENTED
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    spec = app.test_client().get("/openapi.json").get_json()
    documented = {(path, method) for path, operations in spec["paths"].items() for method in operations}
    assert documented == served
    assert {"/health", "/ready", "/v1/embeddings", "/embeddings", "/api/embed", "/v2/rerank"} <= {p for p, _ in served}
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            assert operation["summary"] and operation["tags"], path
            words = operation["summary"] + " ".join(operation["tags"])
            assert "seed" not in words.lower() and "SPEC" not in words, path


def test_ollama_routes_declare_the_flat_style(app):
    spec = app.test_client().get("/openapi.json").get_json()
    for path in ("/api/embed", "/api/embeddings"):
        view = app.view_functions[app.url_map.bind("").match(path, method="POST")[0]]
        assert view.operation.error_style is ErrorStyle.FLAT and view.operation.tag == "Ollama"
        schema = spec["paths"][path]["post"]["responses"]["400"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/OllamaError"}
    assert spec["paths"]["/ready"]["get"]["responses"]["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Ready"
    }
