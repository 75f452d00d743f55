"""Filling what depends on the deployment into the request schemas, in place: served model
names, dimensions, vocabulary, prompt names, and whether image branches stay (see :func:`tighten`)."""

from __future__ import annotations

import copy
from typing import Any, Optional

from pydantic import BaseModel

from ...operations.model_names import name_schema as _names
from ..schemas import IMAGE_DOCUMENT, NEEDS_IMAGE_MODEL, SERVED_MODEL_NAME
from .deployment import Deployment, ServedModel


def component_ref(model: type[BaseModel], components: dict) -> dict:
    # A copy: json_schema_extra constants are shared, and tightening edits the schema in place.
    schema = copy.deepcopy(model.model_json_schema(ref_template="#/components/schemas/{model}"))
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def tighten(schema: dict, limits: Deployment, kind: str, default: Optional[str]) -> None:
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
                tighten(branch, limits, "images", limits.defaults.get("images"))
            else:
                tighten(branch, limits, kind, default)
    name_fields = [key for key, value in props.items() if key == "model" or (isinstance(value, dict) and value.get(SERVED_MODEL_NAME))]
    if limits.served is None:
        names = limits.model_names if kind == "all" else limits.text_model_names
        for key in name_fields if names else ():
            props[key] = _names([n for n in names if n], empty="" in names, nullable=True)
        return
    models = limits.candidates(kind)
    if name_fields and not models and kind in ("tokens", "sparse", "pooling", "classifier", "token-classifier"):
        schema["not"] = {}  # no served model gives what the route needs: every request is refused
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
    for key in ("input", "ids", "inputs"):  # token ids: the model's vocabulary
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
