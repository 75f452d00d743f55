"""The OpenAPI 3.1 description of every documented route, generated from the app's URL map.

Each route declares its operation where it is defined (api.routing: request models from
schemas.py, response models from here, summary, tag, error statuses and error style);
:func:`build_spec` walks `app.url_map`, so a new route appears without being listed a second time.

Served at /openapi.json; /docs renders it with Swagger UI from the PyPI package
`swagger-ui-bundle`'s local files (no CDN). Limits that depend on configuration (served model
names, dimensions, vocabulary, MAX_CLIENT_BATCH_SIZE, MAX_INPUT_CHARS) are filled in per request
from the running service, so the description is exact for this deployment.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Iterator, Literal, Optional, Union

from flask import Flask, current_app
from pydantic import BaseModel, ConfigDict

from . import __version__
from .errors import ErrorStyle

if TYPE_CHECKING:
    from .api.routing import Operation


# ---------------------------------------------------------------------------- response models
class ErrorDetail(BaseModel):
    message: str
    type: str
    param: Optional[str]
    code: Union[int, str]


class ErrorResponse(BaseModel):
    """The error body on every route except Ollama's: `{"error": {"message", "type", "param", "code"}}`."""

    error: ErrorDetail


class OllamaError(BaseModel):
    """The error body on the Ollama routes, flat as Ollama answers: `{"error": str}`."""

    error: str


class EmbeddingItem(BaseModel):
    object: Literal["embedding"]
    index: int
    embedding: Union[list[float], str]


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class OpenAIEmbeddingResponse(BaseModel):
    object: Literal["list"]
    data: list[EmbeddingItem]
    model: str
    usage: Usage


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


class OllamaEmbedResponse(BaseModel):
    model: str
    embeddings: list[list[float]]
    total_duration: int
    load_duration: int
    prompt_eval_count: int


class OllamaEmbeddingsResponse(BaseModel):
    embedding: list[float]


class RerankResult(BaseModel):
    index: int
    relevance_score: float
    document: Optional[dict[str, Any]] = None


class ApiVersion(BaseModel):
    version: str


class BilledUnits(BaseModel):
    search_units: int


class Tokens(BaseModel):
    input_tokens: int
    output_tokens: int


class RerankMeta(BaseModel):
    api_version: ApiVersion
    billed_units: BilledUnits
    tokens: Tokens


class RerankResponse(BaseModel):
    id: str
    model: str
    results: list[RerankResult]
    meta: RerankMeta


class Health(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: Literal["ok"]
    model: Optional[str]
    device: str
    cuda_available: bool
    pid: int
    phase: str


class Ready(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str
    pid: int
    models: list[str]


class Index(BaseModel):
    service: str
    version: str
    models: list[str]
    routes: list[str]


class Info(BaseModel):
    model_config = ConfigDict(extra="allow")
    model_id: str
    model_dtype: str
    model_type: str
    max_input_length: int
    max_batch_size: int
    max_client_batch_size: int
    models: list[dict[str, Any]]


#: The bare `[[float, ...], ...]` body: one vector per input.
VECTORS = {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}
#: The error body model of each error style.
ERROR_MODELS: dict[ErrorStyle, type[BaseModel]] = {ErrorStyle.NESTED: ErrorResponse, ErrorStyle.FLAT: OllamaError}
ERROR_TEXT = {
    400: "Bad request: malformed JSON, wrong types, unknown fields or values, bad dimensions or base64",
    401: "Missing or wrong API key",
    403: "Image URL or path not allowed",
    404: "Unknown model (the message lists the served ones)",
    413: "Body, input count, input length or image over a limit",
    415: "Unsupported content type or image format",
    422: "Over-long input with truncate false; undecodable or undownloadable image",
    429: "Rate limit exceeded",
    500: "A bug; the body carries the request id",
    503: "Loading, draining, or the model's queue is full",
}


class Limits(BaseModel):
    """What the running service allows, filled into the schemas."""

    model_names: list[str] = []
    text_model_names: list[str] = []
    max_dimensions: Optional[int] = None
    max_token_id: Optional[int] = None
    max_items: int = 2048
    max_chars: int = 200_000
    auth: bool = False
    rate_limited: bool = False


def _schema(model: type[BaseModel], components: dict) -> dict:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


#: Request fields whose texts the service checks against MAX_INPUT_CHARS and whose lists it
#: checks against MAX_CLIENT_BATCH_SIZE; `images` only against the latter.
TEXT_FIELDS = {"input", "inputs", "texts", "text", "prompt", "query", "documents"}
LIST_FIELDS = TEXT_FIELDS | {"images"}


def _tighten(schema: dict, limits: Limits, model_names: list[str]) -> None:
    """Fill configuration-dependent limits into a request schema, in place: exactly the limits the
    service enforces, so schema-valid requests are accepted and schema-invalid ones refused."""
    props = schema.get("properties", {})
    if "model" in props and model_names:
        props["model"] = {"anyOf": [{"type": "string", "enum": model_names}, {"type": "null"}], "default": None}
    if "dimensions" in props and limits.max_dimensions:
        props["dimensions"] = {
            "anyOf": [{"type": "integer", "minimum": 1, "maximum": limits.max_dimensions}, {"type": "null"}], "default": None
        }
    for name, node in props.items():
        if name in LIST_FIELDS:
            _limit_field(node, limits, depth=0, texts=name in TEXT_FIELDS)


def _limit_field(node: Any, limits: Limits, depth: int, texts: bool) -> None:
    if not isinstance(node, dict):
        return
    for branch in node.get("anyOf", []):
        _limit_field(branch, limits, depth, texts)
    kind = node.get("type")
    if kind == "string" and texts and "enum" not in node:
        node["maxLength"] = limits.max_chars
    elif kind == "integer" and limits.max_token_id is not None:
        node["minimum"], node["maximum"] = 0, limits.max_token_id
    elif kind == "array":
        if depth == 0 and (node.get("items") or {}).get("type") != "integer":  # a list of inputs, not of token ids
            node["maxItems"] = limits.max_items
        _limit_field(node.get("items"), limits, depth + 1, texts)


#: A URL rule's variable part, `<name>` or `<converter:name>`; and the JSON type of a converter.
_VARIABLE = re.compile(r"<(?:(?P<converter>[^<>:]+):)?(?P<name>[^<>:]+)>")
_CONVERTER_TYPES = {"int": "integer", "float": "number"}


def documented_operations(app: Flask) -> Iterator[tuple[str, str, "Operation"]]:
    """`(URL rule, lower-case method, operation)` for every rule of `app`'s URL map whose view
    declares an operation (api.routing), in registration order. HEAD and OPTIONS, which Flask
    adds itself, are left out."""
    for rule in app.url_map.iter_rules():
        operation = getattr(app.view_functions.get(rule.endpoint), "operation", None)
        if operation is None:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule.rule, method.lower(), operation


def openapi_path(rule: str) -> str:
    """A Flask URL rule as an OpenAPI path: `/docs/<path:name>` -> `/docs/{name}`."""
    return _VARIABLE.sub(lambda m: "{" + m["name"] + "}", rule)


def documented_paths(app: Flask) -> set[str]:
    """The OpenAPI paths of every documented route of `app` (see :func:`documented_operations`)."""
    return {openapi_path(rule) for rule, _method, _operation in documented_operations(app)}


def build_spec(limits: Limits, app: Optional[Flask] = None) -> dict:
    """The OpenAPI 3.1 document of `app` (default: the current app) for this deployment's `limits`."""
    app = app if app is not None else current_app
    components: dict[str, Any] = {}
    error_refs = {style: _schema(model, components) for style, model in ERROR_MODELS.items()}
    paths: dict[str, dict] = {}
    for rule, method, op in documented_operations(app):
        path = openapi_path(rule)
        operation: dict[str, Any] = {"summary": op.summary, "tags": [op.tag], "operationId": f"{method}_{path}"}
        parameters = [
            {"name": m["name"], "in": "path", "required": True,
             "schema": {"type": _CONVERTER_TYPES.get(m["converter"], "string")}}
            for m in _VARIABLE.finditer(rule)
        ]
        if parameters:
            operation["parameters"] = parameters
        if op.requests:
            operation["requestBody"] = {"required": True, "content": _request_content(op, limits, components)}
        operation["responses"] = _responses(op, limits, components, error_refs[op.error_style])
        if limits.auth and op.public:
            operation["security"] = []
        paths.setdefault(path, {})[method] = operation
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "embedding_service",
            "version": __version__,
            "description": "Text and image embeddings and reranking in the OpenAI, TEI, Ollama, Cohere and "
            "SigLIP service dialects.",
        },
        "paths": paths,
        "components": {"schemas": components},
    }
    if limits.auth:
        spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        spec["security"] = [{"bearer": []}]
    return spec


def _request_content(op: "Operation", limits: Limits, components: dict) -> dict:
    """The request body's media types: JSON (one model, or `oneOf` several), plus the multipart
    image upload where the route accepts one."""
    names = limits.model_names if op.models == "all" else limits.text_model_names
    refs = []
    for model in op.requests:
        refs.append(_schema(model, components))
        _tighten(components[model.__name__], limits, names)
    content: dict[str, Any] = {"application/json": {"schema": refs[0] if len(refs) == 1 else {"oneOf": refs}}}
    if op.multipart:
        content["multipart/form-data"] = {
            "schema": {
                "type": "object",
                "properties": {
                    "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
                    "model": {"type": "string", "enum": limits.model_names} if limits.model_names else {"type": "string"},
                    "normalize": {"type": "string", "enum": ["true", "false"]},
                },
                "required": ["file"],
            }
        }
    return content


def _responses(op: "Operation", limits: Limits, components: dict, error_ref: dict) -> dict:
    """200 and every error status the route can answer with, each with its body schema."""
    if op.response is None or op.media_type != "application/json":
        ok_schema: dict = {"type": "string"}
    elif isinstance(op.response, dict):
        ok_schema = op.response
    else:
        ok_schema = _schema(op.response, components)
    codes = set(op.errors) | {500}
    if op.requests:
        codes.add(405)
    if not op.public:
        if limits.auth:
            codes.add(401)
        if limits.rate_limited:
            codes.add(429)
    responses: dict[str, Any] = {"200": {"description": "OK", "content": {op.media_type: {"schema": ok_schema}}}}
    for code in sorted(codes):
        model = op.error_bodies.get(code)
        schema = _schema(model, components) if model is not None else error_ref
        responses[str(code)] = {
            "description": ERROR_TEXT.get(code, "Method not allowed"),
            "content": {"application/json": {"schema": schema}},
        }
    return responses
