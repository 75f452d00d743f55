"""Seed 000 and TEI routes: `POST /embed_text`, `POST /embed` (`inputs` for TEI text; `images`
for seed 000 images). Both answer a bare `[[float, ...], ...]` list, one row per input."""

from __future__ import annotations

from flask import Blueprint

from ..errors import BadRequest
from ..models.base import PromptChoice
from ..schemas import EmbedTextRequest, ImageEmbedRequest, TEIEmbedRequest, parse
from ..service import embed_text
from .common import json_body, json_response, registry

bp = Blueprint("native", __name__)

IMAGE_MODEL_HINT = (
    "no image model is configured: set MODEL_NAME (or add to MODELS) a multimodal model such as "
    "google/siglip2-so400m-patch16-naflex"
)


@bp.post("/embed_text")
def embed_text_route():
    """Seed 000: `{"texts": [str]}` or `{"text": str}` -> `[[float]]`."""
    req = parse(EmbedTextRequest, json_body())
    texts = req.items()
    result = embed_text(registry(), model_name=req.model, texts=texts, normalize=req.normalize, param="texts" if req.texts is not None else "text")
    return json_response(result.vectors)


@bp.post("/embed")
def embed_route():
    """TEI (`inputs`) or seed 000 (`images`) -> `[[float]]`."""
    body = json_body()
    if isinstance(body, dict) and "images" in body and "inputs" not in body:
        parse(ImageEmbedRequest, body)
        raise BadRequest(IMAGE_MODEL_HINT, param="images")
    if isinstance(body, dict) and "inputs" not in body:
        raise BadRequest('send "inputs" (text, TEI) or "images" (seed 000)', param="inputs")
    req = parse(TEIEmbedRequest, body)
    texts = [req.inputs] if isinstance(req.inputs, str) else req.inputs
    result = embed_text(
        registry(),
        model_name=req.model,
        texts=texts,
        normalize=req.normalize,
        dimensions=req.dimensions,
        truncate=req.truncate,
        direction=req.truncation_direction,
        prompt=PromptChoice(prompt_name=req.prompt_name),
        param="inputs",
    )
    return json_response(result.vectors)
