"""The OpenAPI 3.1 document: every documented route of the app's URL map (see the package doc)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Iterator, Optional

from flask import Flask, current_app
from pydantic import BaseModel

from ... import __version__
from ..errors import ErrorStyle
from ..responses import CohereError, ErrorResponse, OllamaError, TEIError
from ..schemas import MODEL_KIND, NEEDS_IMAGE_MODEL
from .deployment import LIMIT_TEXT, Deployment
from .tighten import component_ref, tighten

if TYPE_CHECKING:
    from ..routing import Operation


#: The error body model of each error style.
ERROR_MODELS: dict[ErrorStyle, type[BaseModel]] = {
    ErrorStyle.NESTED: ErrorResponse, ErrorStyle.VLLM: ErrorResponse, ErrorStyle.FLAT: OllamaError,
    ErrorStyle.TEI: TEIError, ErrorStyle.COHERE: CohereError,
}
ERROR_TEXT = {
    400: "Bad request: malformed JSON, wrong types, unknown fields or values, bad dimensions or base64",
    401: "Missing or wrong API key",
    403: "Image URL or path not allowed",
    404: "Unknown model (the message lists the served ones)",
    413: "Body, input count, input length or image over a limit",
    424: "The forward pass failed (TEI's Backend error)",
    415: "Unsupported content type or image format",
    422: "Over-long input with truncate false; undecodable or undownloadable image",
    429: "Rate limit exceeded; on TEI's routes also the queue or concurrency limit full (Overloaded)",
    500: "A bug; the body carries the request id",
    503: "Loading, draining, or the model's queue is full",
}


#: A URL rule's variable part, `<name>` or `<converter:name>`; and the JSON type of a converter.
_VARIABLE = re.compile(r"<(?:(?P<converter>[^<>:]+):)?(?P<name>[^<>:]+)>")
_CONVERTER_TYPES = {"int": "integer", "float": "number"}


def json_key(value: Any) -> str:
    """A canonical string of a JSON value (to deduplicate schemas)."""
    return json.dumps(value, sort_keys=True)


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


def _pathcomponent_ref(variable: re.Match, limits: Deployment) -> dict:
    """A path variable's schema: a `model` is one of the served names or aliases (an Ollama tag is
    accepted too, but not listed: a generated name with a tag and a `/` does not survive
    URL-encoding tools reliably); anything else is its converter's JSON type."""
    if variable["name"] == "model" and limits.model_names:
        return {"type": "string", "enum": [name for name in limits.model_names if name]}
    return {"type": _CONVERTER_TYPES.get(variable["converter"], "string")}


def build_spec(limits: Deployment, app: Optional[Flask] = None) -> dict:
    """The OpenAPI 3.1 document of `app` (default: the current app) for this deployment's `limits`."""
    app = app if app is not None else current_app
    components: dict[str, Any] = {}
    error_refs = {style: component_ref(model, components) for style, model in ERROR_MODELS.items()}
    paths: dict[str, dict] = {}
    for rule, method, op in documented_operations(app):
        path = openapi_path(rule)
        operation: dict[str, Any] = {"summary": op.summary, "tags": [op.tag], "operationId": f"{method}_{path}"}
        parameters = [
            {"name": m["name"], "in": "path", "required": True, "schema": _pathcomponent_ref(m, limits)}
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


def _request_content(op: "Operation", limits: Deployment, components: dict) -> dict:
    """The request body's media types: JSON (one model, or `oneOf` several), plus the multipart
    image upload where the route accepts one; request models and uploads that need an image model
    are left out where none is served."""
    default = limits.defaults.get("first" if op.default_model == "first" else op.models)
    refs = []
    for model in op.requests:
        ref = component_ref(model, components)
        schema = components[model.__name__]
        if not schema.get(NEEDS_IMAGE_MODEL):
            kind = schema.pop(MODEL_KIND, op.models)  # a request model of another kind (TEI's rerank on `POST /`)
            if kind != op.models and len(op.requests) > 1 and limits.served is not None and not limits.candidates(kind):
                del components[model.__name__]  # no served model of that kind: the form is left out
                continue
            tighten(schema, limits, kind, default if kind == op.models else limits.defaults.get(kind))
        elif limits.images:
            tighten(schema, limits, "images", limits.defaults.get("images"))
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


def _responses(op: "Operation", limits: Deployment, components: dict, error_refs: dict, public: bool) -> dict:
    """200 and every error status the route can answer with, each with its body schema: the
    route's error style, or any of them where the request's shape picks one (`error_styles`).
    A TEI-styled route also answers TEI's 424 and 429."""
    if op.response is None or op.media_type != "application/json":
        ok_schema: dict = {"type": "string"}
    elif isinstance(op.response, dict):
        ok_schema = op.response
    else:
        ok_schema = component_ref(op.response, components)
    styles = (op.error_style, *op.error_styles)
    codes = set(op.errors) | {500}
    if ErrorStyle.TEI in styles:
        codes |= {424, 429}
    if op.requests:
        codes.add(405)
    if not public:
        if limits.auth:
            codes.add(401)
        if limits.rate_limited:
            codes.add(429)
    refs = list({json_key(error_refs[style]): error_refs[style] for style in styles}.values())
    error_schema = refs[0] if len(refs) == 1 else {"anyOf": refs}
    responses: dict[str, Any] = {"200": {"description": "OK", "content": {op.media_type: {"schema": ok_schema}}}}
    for code in sorted(codes):
        model = op.error_bodies.get(code)
        schema = component_ref(model, components) if model is not None else error_schema
        responses[str(code)] = {
            "description": ERROR_TEXT.get(code, "Method not allowed"),
            "content": {"application/json": {"schema": schema}},
        }
    return responses
