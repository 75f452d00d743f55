"""The OpenAPI 3.1 description of every route, generated from the pydantic schemas (request models
in schemas.py, response models here), never written twice by hand.

Served at /openapi.json; /docs renders it with Swagger UI from the PyPI package
`swagger-ui-bundle`'s local files (no CDN). Limits that depend on configuration (served model
names, dimensions, vocabulary, MAX_CLIENT_BATCH_SIZE, MAX_INPUT_CHARS) are filled in per request
from the running service, so the description is exact for this deployment.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict

from . import __version__
from .schemas import (
    EmbedTextRequest,
    ImageEmbedRequest,
    OllamaEmbeddingsRequest,
    OllamaEmbedRequest,
    OpenAIEmbeddingRequest,
    RerankRequest,
    TEIEmbedRequest,
)


# ---------------------------------------------------------------------------- response models
class ErrorDetail(BaseModel):
    message: str
    type: str
    param: Optional[str]
    code: Union[int, str]


class ErrorResponse(BaseModel):
    """SPEC §3's error body on every route except Ollama's."""

    error: ErrorDetail


class OllamaError(BaseModel):
    """Ollama's flat error body."""

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


VECTORS = {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}

# ---------------------------------------------------------------------------- the route table
EMBED_ERRORS = (400, 404, 413, 415, 422, 500, 503)
IMAGE_ERRORS = (400, 403, 404, 413, 415, 422, 500, 503)
#: (path, method, summary, tag, request models, response (model or schema), errors, extra)
OPERATIONS: list[tuple] = [
    ("/embed_text", "post", "Text embeddings (seed 000): texts or text -> [[float]]", "seed 000",
     [EmbedTextRequest], VECTORS, EMBED_ERRORS, {}),
    ("/embed", "post", "TEI `inputs` (text) or seed 000 `images` -> [[float]]; multipart image upload too", "TEI / seed 000",
     [TEIEmbedRequest, ImageEmbedRequest], VECTORS, IMAGE_ERRORS, {"multipart": True}),
    ("/v1/embeddings", "post", "OpenAI embeddings (also `modality: image`)", "OpenAI",
     [OpenAIEmbeddingRequest], OpenAIEmbeddingResponse, IMAGE_ERRORS, {}),
    ("/embeddings", "post", "OpenAI embeddings, seed 001's path", "OpenAI",
     [OpenAIEmbeddingRequest], OpenAIEmbeddingResponse, IMAGE_ERRORS, {}),
    ("/v1/models", "get", "Served models", "OpenAI", [], ModelList, (503,), {}),
    ("/api/embed", "post", "Ollama embed (durations in ns)", "Ollama",
     [OllamaEmbedRequest], OllamaEmbedResponse, EMBED_ERRORS, {"flat_errors": True}),
    ("/api/embeddings", "post", "Ollama legacy embeddings (not normalised)", "Ollama",
     [OllamaEmbeddingsRequest], OllamaEmbeddingsResponse, EMBED_ERRORS, {"flat_errors": True}),
    ("/rerank", "post", "Rerank (seed 004; documents returned by default)", "Cohere",
     [RerankRequest], RerankResponse, IMAGE_ERRORS, {}),
    ("/v1/rerank", "post", "Rerank, Cohere v1", "Cohere", [RerankRequest], RerankResponse, IMAGE_ERRORS, {}),
    ("/v2/rerank", "post", "Rerank, Cohere v2", "Cohere", [RerankRequest], RerankResponse, IMAGE_ERRORS, {}),
    ("/health", "get", "Liveness (never touches a model)", "operations", [], Health, (), {"public": True}),
    ("/ready", "get", "Readiness: 200 once models are loaded, 503 while loading or draining", "operations",
     [], Ready, (503,), {"public": True}),
    ("/", "get", "Service name, version, models, routes", "operations", [], Index, (), {"public": True}),
    ("/info", "get", "Models, dimensions, limits, batching counters (TEI-style)", "operations", [], Info, (503,), {}),
    ("/metrics", "get", "Prometheus metrics, summed over workers", "operations", [], None, (), {"public": True, "text": True}),
    ("/openapi.json", "get", "This description", "operations", [], {"type": "object"}, (), {"public": True}),
    ("/docs", "get", "Swagger UI", "operations", [], None, (), {"public": True, "html": True}),
]
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


def build_spec(limits: Limits) -> dict:
    """The OpenAPI 3.1 document for this deployment."""
    components: dict[str, Any] = {}
    error_ref = _schema(ErrorResponse, components)
    flat_ref = _schema(OllamaError, components)
    paths: dict[str, dict] = {}
    for path, method, summary, tag, requests, response, errors, extra in OPERATIONS:
        operation: dict[str, Any] = {"summary": summary, "tags": [tag], "operationId": f"{method}_{path}"}
        names = limits.model_names if tag == "Cohere" else limits.text_model_names
        if requests:
            refs = []
            for model in requests:
                refs.append(_schema(model, components))
                _tighten(components[model.__name__], limits, names)
            body = refs[0] if len(refs) == 1 else {"oneOf": refs}
            content = {"application/json": {"schema": body}}
            if extra.get("multipart"):
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
            operation["requestBody"] = {"required": True, "content": content}
        if extra.get("text"):
            ok = {"text/plain": {"schema": {"type": "string"}}}
        elif extra.get("html"):
            ok = {"text/html": {"schema": {"type": "string"}}}
        elif isinstance(response, dict):
            ok = {"application/json": {"schema": response}}
        else:
            ok = {"application/json": {"schema": _schema(response, components)}}
        codes = set(errors) | {500}
        if requests:
            codes |= {405}
        if not extra.get("public"):
            if limits.auth:
                codes.add(401)
            if limits.rate_limited:
                codes.add(429)
        responses: dict[str, Any] = {"200": {"description": "OK", "content": ok}}
        for code in sorted(codes):
            if code == 503 and path == "/ready":
                responses["503"] = {"description": ERROR_TEXT[503], "content": {"application/json": {"schema": _schema(Ready, components)}}}
                continue
            ref = flat_ref if extra.get("flat_errors") else error_ref
            responses[str(code)] = {"description": ERROR_TEXT.get(code, "Method not allowed"), "content": {"application/json": {"schema": ref}}}
        operation["responses"] = responses
        if limits.auth and extra.get("public"):
            operation["security"] = []
        paths.setdefault(path, {})[method] = operation
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "embedding_service",
            "version": __version__,
            "description": "Text and image embeddings and reranking in the seed, OpenAI, TEI, Ollama and Cohere dialects.",
        },
        "paths": paths,
        "components": {"schemas": components},
    }
    if limits.auth:
        spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        spec["security"] = [{"bearer": []}]
    return spec
