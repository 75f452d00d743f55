"""OpenAI dialect: `POST /v1/embeddings` (also served at `/embeddings`), `GET /v1/models`,
`GET /v1/models/{model}`.

`encoding_format: "base64"` returns each vector as base64 of little-endian float32 bytes, which
is what the official SDK asks for by default and decodes itself.
"""

from __future__ import annotations

import base64

import numpy as np

from ....domain.errors import InvalidInput
from ....models.prompts import PromptChoice
from .responses import ModelCard, ModelList, OpenAIEmbeddingResponse
from ...schemas import parse, texts_or_ids
from .schemas import OpenAIEmbeddingRequest
from ....operations.embed import embed_images, embed_text
from ...json_io import engines, images, json_body, json_response, budgets, state
from ...budgets import ITEMS, BodyLimit, Budget
from ...routing import IMAGE_ERRORS, IMAGE_LIMITS, ApiBlueprint
from ....operations.model_names import resolve

bp = ApiBlueprint("openai", __name__, tag="OpenAI")


def _b64(row: np.ndarray) -> str:
    return base64.b64encode(row.astype("<f4", copy=False).tobytes()).decode("ascii")


@bp.operation(
    "POST", "/v1/embeddings", "/embeddings",
    summary="OpenAI embeddings (also `modality: image`); /embeddings is the same route without /v1",
    request=OpenAIEmbeddingRequest, response=OpenAIEmbeddingResponse, errors=IMAGE_ERRORS,
    limits=IMAGE_LIMITS, budget=Budget(BodyLimit.IMAGES, "text", {"input": ITEMS}),
)
def embeddings():
    """`{"input", "model"?, "encoding_format"?, "dimensions"?, "instruction"?, "input_type"?}` ->
    `{"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model", "usage"}`."""
    req = parse(OpenAIEmbeddingRequest, json_body())
    if req.modality == "image":
        return _respond(_embed_image_input(req), req.encoding_format)
    texts, token_ids = texts_or_ids(req.input)
    result = embed_text(
        engines(),
        budgets(),
        model_name=req.model,
        texts=texts,
        token_ids=token_ids,
        dimensions=req.dimensions,
        prompt=PromptChoice(input_type=req.input_type, instruction=req.instruction),
        param="input",
        chunked=req.chunked,
    )
    return _respond(result, req.encoding_format)


def _embed_image_input(req: OpenAIEmbeddingRequest):
    """`modality: "image"`: `input` holds images (data URI, base64, URL or allowed local path)."""
    sources = [req.input] if isinstance(req.input, str) else req.input
    if not all(isinstance(item, str) for item in sources):
        raise InvalidInput("with modality image, input must be a string or a list of strings (images)", param="input")
    if req.instruction is not None or req.input_type is not None:
        raise InvalidInput("instruction and input_type apply to text; drop them for modality image", param="modality")
    return embed_images(
        engines(), budgets(), images(), model_name=req.model, sources=sources, dimensions=req.dimensions, param="input"
    )


def _respond(result, encoding_format: str):
    vectors = result.vectors
    encode = _b64 if encoding_format == "base64" else (lambda row: row)
    data = [{"object": "embedding", "index": i, "embedding": encode(vectors[i])} for i in range(len(vectors))]
    return json_response(
        {
            "object": "list",
            "data": data,
            "model": result.model.name,
            "usage": {"prompt_tokens": result.tokens, "total_tokens": result.tokens},
        }
    )


@bp.operation("GET", "/v1/models", summary="Served models, then one entry per alias", response=ModelList, errors=(503,))
def models():
    """Served models in OpenAI's list shape, with kind, dimension and aliases added; each alias
    (MODEL_ALIASES included) is listed too, as its own `id` with `root`, the model it names (as
    vLLM lists), so clients that only offer the listed ids can pick it."""
    data = []
    for engine in engines().engines:
        data.append(_card(engine, engine.name))
        data.extend(_card(engine, alias) for alias in engine.aliases)
    return json_response({"object": "list", "data": data})


@bp.operation(
    "GET", "/v1/models/<path:model>", summary="One model by name or alias (OpenAI's models.retrieve)",
    response=ModelCard, errors=(404, 503),
)
def model(model: str):
    """The `/v1/models` entry whose `id` is `model` (a served name or alias, as the OpenAI SDK's
    `models.retrieve` asks); raises ModelNotFound (404) listing the served models."""
    reg = engines()
    engine = reg.find(resolve(reg, model))
    return json_response(_card(engine, model if model in engine.aliases else engine.name))


def _card(engine, name: str) -> dict:
    """One model card in OpenAI's shape: `id` is `name`, `root` the served model it names."""
    info = engine.info()
    extra = {k: info[k] for k in ("kind", "dimension", "max_input_length", "aliases") if k in info}
    return {"id": name, "object": "model", "created": state().worker.started, "owned_by": "embedding_service",
            **extra, "root": engine.name}

