"""The OpenAPI 3.1 description of every documented route, generated from the app's URL map.

Each route declares its operation where it is defined (api.routing: request models from
schemas.py, response models from responses.py, summary, tag, error statuses and error style);
:func:`build_spec` walks `app.url_map`, so a new route appears without being listed a second time.

Served at /openapi.json; /docs renders it with Swagger UI from the PyPI package
`swagger-ui-bundle`'s local files (no CDN). What depends on configuration (served model names,
dimensions, vocabulary, prompt names, whether an image model is served, the public paths) is
filled in per request from the running service, so that a request the description calls valid is
accepted and one it calls invalid is refused with a 4xx. The request limits answered with 413
(MAX_INPUT_CHARS and the others of LIMIT_TEXT) are stated as each operation's `x-limits`, not as
schema bounds. What no JSON Schema can say is in the descriptions: an image string must decode to
an image, a text with `truncate: false` must fit the model's window (422), and with `rank_fields`
a document object must hold one of the named fields.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any, Iterator, Optional

from flask import Flask, current_app
from pydantic import BaseModel

from .. import __version__
from .errors import ErrorStyle
from ..operations.model_names import name_schema as _names
from .responses import ErrorResponse, OllamaError
from .schemas import IMAGE_DOCUMENT, MODEL_KIND, NEEDS_IMAGE_MODEL, SERVED_MODEL_NAME

if TYPE_CHECKING:
    from .routing import Operation


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


#: The request limits a route may declare (`Operation.limits`), by setting name: each is answered
#: with 413 beyond it. They are not JSON Schema bounds (`maxLength`, `maxItems`): a request outside
#: a schema's bounds is one the service must refuse as malformed (400), and these are budgets on
#: well-formed requests, some of them sums over the request or counts of tokens and pixels no
#: schema can spell. They are stated as `x-limits` on the operation and in its description.
LIMIT_TEXT = {
    "MAX_CONTENT_LENGTH": "bytes of request body",
    "MAX_CLIENT_BATCH_SIZE": "inputs or documents per request",
    "MAX_INPUT_CHARS": "characters per input as the model sees it (prompt or instruction included)",
    "MAX_REQUEST_CHARS": "characters per request, summed over its inputs (prompts included; for reranking, "
    "the query once per document)",
    "MAX_QUEUE_SIZE": "items one request may queue on a model (0: no limit)",
    "MAX_RERANK_CHUNKS": "document chunks per rerank request with max_chunks_per_doc",
    "IMAGE_MAX_BYTES": "bytes per encoded image",
    "IMAGE_MAX_PIXELS": "pixels per image",
    "IMAGE_MAX_REQUEST_PIXELS": "pixels per request, summed over its images",
    "IMAGE_MAX_URLS": "image URLs per request",
    "MAX_EMBED_ALL_TOKENS": "token vectors per request",
}


class ServedModel(BaseModel):
    """One served model as the request schemas need it: its names, what it can do and its bounds."""

    labels: list[str]
    text: bool = True
    images: bool = False
    pairs: bool = False
    dimension: Optional[int] = None
    max_token_id: Optional[int] = None
    #: Its prompts (TEI's `prompt_name`).
    prompt_names: list[str] = []
    #: Whether reranking with it takes an `instruction` (cross-encoders refuse one).
    instruction: bool = True
    #: Whether it gives token embeddings (TEI's /embed_all).
    token_embeddings: bool = False

    @property
    def image_documents(self) -> bool:
        """Whether reranking with it scores image documents (a multimodal model scoring by embeddings)."""
        return self.images and not self.pairs


class Limits(BaseModel):
    """What the running service allows, filled into the schemas. Without `served` (the models are
    still loading, or a bare app) the schemas keep what the request models say, with `model`
    limited to `model_names` / `text_model_names` where given."""

    model_names: list[str] = []
    text_model_names: list[str] = []
    served: Optional[list[ServedModel]] = None
    #: The name a request without `model` (or with "") gets, by kind: "text" (the default text
    #: model), "first" (the first configured model where it embeds text, as /embed_text picks),
    #: "images" (the default image model), "all" (the default scorer of the rerank routes),
    #: "tokens" (the default model of /embed_all).
    defaults: dict[str, str] = {}
    max_items: int = 2048
    max_chars: int = 200_000
    #: The other request limits of LIMIT_TEXT, by setting name.
    budgets: dict[str, int] = {}
    auth: bool = False
    rate_limited: bool = False
    #: AUTH_PUBLIC_PATHS: routes served without an API key (None: each operation's `public`).
    public_paths: Optional[list[str]] = None

    @property
    def images(self) -> bool:
        """Whether image requests may be accepted (True while that is not known)."""
        return self.served is None or any(m.images for m in self.served)

    def candidates(self, kind: str) -> list[ServedModel]:
        """The served models a request of `kind` ("text", "all" for reranking, "images", "tokens"
        for token embeddings) may name."""
        if kind == "images":
            return [m for m in self.served or () if m.images]
        if kind == "tokens":
            return [m for m in self.served or () if m.token_embeddings]
        return [m for m in self.served or () if m.text or (kind == "all" and m.pairs)]

    def values(self, names: tuple[str, ...]) -> dict[str, int]:
        """The current values of the request limits `names` (those this deployment applies)."""
        known = {"MAX_CLIENT_BATCH_SIZE": self.max_items, "MAX_INPUT_CHARS": self.max_chars, **self.budgets}
        images = self.images
        return {name: known[name] for name in names if name in known and (images or not name.startswith("IMAGE_"))}

    def is_public(self, path: str, declared: bool, method: str = "get") -> bool:
        """Whether `method` on `path` is served without an API key: AUTH_PUBLIC_PATHS opens the
        GET (and HEAD) of its paths only, so `POST /` (TEI's inference route) needs a key."""
        if self.public_paths is None:
            return declared
        listed = path in self.public_paths or ("/docs" in self.public_paths and path.startswith("/docs/"))
        return listed and method in ("get", "head")


def _schema(model: type[BaseModel], components: dict) -> dict:
    # A copy: json_schema_extra constants are shared, and tightening edits the schema in place.
    schema = copy.deepcopy(model.model_json_schema(ref_template="#/components/schemas/{model}"))
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _tighten(schema: dict, limits: Limits, kind: str, default: Optional[str]) -> None:
    """Fill what depends on the deployment into a request schema, in place, so that it says
    exactly what this deployment accepts.

    `kind` says which models the request may name ("text", "all" on the rerank routes, "images")
    and `default` which one it gets without `model`. Image branches (schemas.NEEDS_IMAGE_MODEL)
    go where no image model is served and otherwise name the image models. The bounds that depend
    on the model (`dimensions`, token ids in `input`, `prompt_name`, a reranking `instruction`,
    image documents) are the model's own: one set when every candidate shares it, else one `anyOf`
    branch per model, the default's taking a request without `model`.
    """
    if not limits.images:
        _drop_image_branches(schema)
    props = schema.get("properties", {})
    for keyword in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(keyword, []):
            if branch.get(NEEDS_IMAGE_MODEL):
                fields = branch.setdefault("properties", {})
                for name in ("model", "dimensions", "output_dimension"):
                    if name in props:
                        fields.setdefault(name, {})
                _tighten(branch, limits, "images", limits.defaults.get("images"))
            else:
                _tighten(branch, limits, kind, default)
    name_fields = [key for key, value in props.items() if key == "model" or (isinstance(value, dict) and value.get(SERVED_MODEL_NAME))]
    if limits.served is None:
        names = limits.model_names if kind == "all" else limits.text_model_names
        for key in name_fields if names else ():
            props[key] = _names([n for n in names if n], empty="" in names, nullable=True)
        return
    models = limits.candidates(kind)
    if name_fields and not models and kind == "tokens":
        schema["not"] = {}  # no served model gives token embeddings: every request is refused
    if not name_fields or not models:
        return
    for key in name_fields:
        props[key] = _names([label for m in models for label in m.labels], empty=True, nullable=True)
    images = limits.images
    own = [_bounds(props, m, images) for m in models]
    if all(bounds == own[0] for bounds in own):
        _narrow(schema, own[0])
        return
    _narrow(schema, _bounds(props, _loosest(models), images))
    branches = []
    for m, bounds in zip(models, own):
        if default in m.labels:
            branch = {"properties": {"model": _names(m.labels, empty=True, nullable=True), **bounds}}
        else:
            branch = {"required": ["model"], "properties": {"model": _names(m.labels, empty=False), **bounds}}
        branches.append({"title": m.labels[0], **branch})
    schema.setdefault("allOf", []).append({"anyOf": branches})


def _narrow(schema: dict, bounds: dict) -> None:
    """Bound `schema`'s properties: a bound replaces the property's schema, but `documents`' adds to it."""
    documents = bounds.pop("documents", None)
    schema["properties"].update(bounds)
    if documents is not None:
        schema.setdefault("allOf", []).append({"properties": {"documents": documents}})


def _bounds(props: dict, m: ServedModel, images: bool = False) -> dict:
    """The property schemas that model `m` bounds, for the properties in `props` (`images`: image
    documents are described at all)."""
    bounds: dict[str, Any] = {}
    for key in ("dimensions", "output_dimension"):  # Matryoshka: up to the model's dimension
        if key in props and m.dimension:
            bounds[key] = _nullable({"type": "integer", "minimum": 1, "maximum": m.dimension})
    if "prompt_name" in props:
        names = m.prompt_names
        bounds["prompt_name"] = _nullable({"type": "string", "enum": names}) if names else {"type": "null", "default": None}
    if "instruction" in props and not m.instruction:
        bounds["instruction"] = {"type": "null", "default": None}
    if "documents" in props and images and not m.image_documents:
        bounds["documents"] = {"items": {"not": copy.deepcopy(IMAGE_DOCUMENT)}}
    for key in ("input", "ids"):  # token ids: the model's vocabulary
        if key in props and m.max_token_id is not None and _has_integers(props[key]):
            bounds[key] = copy.deepcopy(props[key])
            _limit_token_ids(bounds[key], m.max_token_id)
    if "truncation_direction" in props and m.pairs:  # a pair reranker cuts the document's end only
        bounds["truncation_direction"] = {"type": "string", "pattern": "^[Rr][Ii][Gg][Hh][Tt]$", "default": "right"}
    return bounds


def _loosest(models: list[ServedModel]) -> ServedModel:
    """A model whose bounds admit whatever any of `models` admits."""
    dimensions = [m.dimension for m in models if m.dimension]
    token_ids = [m.max_token_id for m in models if m.max_token_id is not None]
    return ServedModel(
        labels=[],
        dimension=max(dimensions, default=None),
        max_token_id=max(token_ids, default=None),
        prompt_names=sorted({name for m in models for name in m.prompt_names}),
        instruction=any(m.instruction for m in models),
        images=any(m.image_documents for m in models),
    )


def _nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}], "default": None}


def _has_integers(node: Any) -> bool:
    if isinstance(node, dict):
        return node.get("type") == "integer" or any(_has_integers(v) for v in node.values())
    return isinstance(node, list) and any(_has_integers(v) for v in node)


def _limit_token_ids(node: Any, max_token_id: int) -> None:
    if not isinstance(node, dict):
        return
    for branch in node.get("anyOf", []):
        _limit_token_ids(branch, max_token_id)
    if node.get("type") == "integer":
        node["minimum"], node["maximum"] = 0, max_token_id
    elif node.get("type") == "array":
        _limit_token_ids(node.get("items"), max_token_id)


def _drop_image_branches(node: Any) -> None:
    """Remove every `anyOf`/`oneOf` branch marked NEEDS_IMAGE_MODEL, at any depth, in place."""
    if isinstance(node, list):
        for item in node:
            _drop_image_branches(item)
        return
    if not isinstance(node, dict):
        return
    for keyword in ("anyOf", "oneOf"):
        if keyword in node:
            node[keyword] = [b for b in node[keyword] if not (isinstance(b, dict) and b.get(NEEDS_IMAGE_MODEL))]
    for value in node.values():
        _drop_image_branches(value)


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


def _path_schema(variable: re.Match, limits: Limits) -> dict:
    """A path variable's schema: a `model` is one of the served names or aliases (an Ollama tag is
    accepted too, but not listed: a generated name with a tag and a `/` does not survive
    URL-encoding tools reliably); anything else is its converter's JSON type."""
    if variable["name"] == "model" and limits.model_names:
        return {"type": "string", "enum": [name for name in limits.model_names if name]}
    return {"type": _CONVERTER_TYPES.get(variable["converter"], "string")}


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
            {"name": m["name"], "in": "path", "required": True, "schema": _path_schema(m, limits)}
            for m in _VARIABLE.finditer(rule)
        ]
        if parameters:
            operation["parameters"] = parameters
        budgets = limits.values(op.limits)
        if budgets:
            operation["description"] = "Request limits, each answered with 413 beyond it: " + "; ".join(
                f"{name} = {value} {LIMIT_TEXT[name]}" for name, value in budgets.items()
            ) + "."
            operation["x-limits"] = budgets
        if op.requests:
            operation["requestBody"] = {"required": True, "content": _request_content(op, limits, components)}
        public = limits.is_public(path, op.public, method)
        operation["responses"] = _responses(op, limits, components, error_refs, public)
        if limits.auth and public:
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
    image upload where the route accepts one; request models and uploads that need an image model
    are left out where none is served."""
    default = limits.defaults.get("first" if op.default_model == "first" else op.models)
    refs = []
    for model in op.requests:
        ref = _schema(model, components)
        schema = components[model.__name__]
        if not schema.get(NEEDS_IMAGE_MODEL):
            kind = schema.pop(MODEL_KIND, op.models)  # a request model of another kind (TEI's rerank on `POST /`)
            _tighten(schema, limits, kind, default if kind == op.models else limits.defaults.get(kind))
        elif limits.images:
            _tighten(schema, limits, "images", limits.defaults.get("images"))
        else:
            del components[model.__name__]
            continue
        refs.append(ref)
    content: dict[str, Any] = {"application/json": {"schema": refs[0] if len(refs) == 1 else {"oneOf": refs}}}
    if op.multipart and limits.images:
        names = [""] + [label for m in limits.candidates("images") for label in m.labels] if limits.served else []
        content["multipart/form-data"] = {
            "schema": {
                "type": "object",
                "properties": {
                    "file": {"type": "array", "items": {"type": "string", "format": "binary"}, "minItems": 1},
                    "model": {"type": "string", "enum": names} if names else {"type": "string"},
                    "normalize": {"type": "string", "enum": ["true", "false"]},
                },
                "required": ["file"],
                "additionalProperties": False,
            }
        }
    return content


def _responses(op: "Operation", limits: Limits, components: dict, error_refs: dict, public: bool) -> dict:
    """200 and every error status the route can answer with, each with its body schema (405 is
    decided before a route matches, so its body is always the nested error)."""
    if op.response is None or op.media_type != "application/json":
        ok_schema: dict = {"type": "string"}
    elif isinstance(op.response, dict):
        ok_schema = op.response
    else:
        ok_schema = _schema(op.response, components)
    codes = set(op.errors) | {500}
    if op.requests:
        codes.add(405)
    if not public:
        if limits.auth:
            codes.add(401)
        if limits.rate_limited:
            codes.add(429)
    responses: dict[str, Any] = {"200": {"description": "OK", "content": {op.media_type: {"schema": ok_schema}}}}
    for code in sorted(codes):
        model = op.error_bodies.get(code)
        style = ErrorStyle.NESTED if code == 405 else op.error_style
        schema = _schema(model, components) if model is not None else error_refs[style]
        responses[str(code)] = {
            "description": ERROR_TEXT.get(code, "Method not allowed"),
            "content": {"application/json": {"schema": schema}},
        }
    return responses
