"""Cohere's embed API: `POST /v1/embed` and `POST /v2/embed`, in the shapes the official `cohere`
SDK parses (`Client.embed`, `ClientV2.embed`, their async twins). Cohere's rerank is in
`api/rerank.py`.

- `input_type` selects the model's own prompt: `search_query` its `query` prompt,
  `search_document` its `document` prompt, `classification`, `clustering` and `image` the prompt
  of that name if the model has one; without `input_type` the model's default prompt applies.
- `truncate`: `END` (default) cuts an over-long text's end, `START` its start, `NONE` refuses it
  with 422 naming the text and the limit (the service's rule for `truncate: false`).
- `embedding_types`: `float`, `int8`, `uint8`, `binary`, `ubinary`, `base64`, each vector
  quantized on its own (`quantization.py`). v1 without `embedding_types` answers
  `response_type: "embeddings_floats"` with `embeddings: [[float]]`; otherwise (and always on v2)
  `"embeddings_by_type"` with one array per type asked (v2 default: `float`).
- v2: `output_dimension` truncates (Matryoshka) then re-normalises; `max_tokens` cuts each text to
  that many tokens on the side `truncate` says (`NONE`: 422 beyond); `priority` orders the
  batcher's queue (lower first, as vLLM's field).
- Images (`images`, or v2 `inputs` with an image part) need a multimodal model: without `model`,
  the default image model embeds the whole request (its text tower for the texts), so text and
  image vectors share one space. Responses carry `texts` (the texts embedded, v2 text parts
  joined), not `images`.
- `meta`: `api_version.version` "1" or "2" (also `api_version` at the top, as Cohere's published document
  requires); `billed_units.input_tokens` (tokens fed) and
  `billed_units.images`.
"""

from __future__ import annotations

import uuid
from typing import Optional, Sequence

import numpy as np

from ....inference.engine import Capability
from ....domain.errors import Unprocessable
from ....models.prompts import PromptChoice
from ....operations.quantization import by_type
from .responses import CohereEmbedResponse
from ...schemas import parse
from .schemas import CohereEmbedV1Request, CohereEmbedV2Request
from ....operations.embed import check_batch_size, embed_images, embed_text
from ...json_io import engines, images, json_body, json_response, budgets
from ...budgets import ITEMS, BodyLimit, Budget
from ...routing import IMAGE_ERRORS, IMAGE_LIMITS, ApiBlueprint
from ...errors import ErrorStyle
from ....operations.model_names import resolve

bp = ApiBlueprint("cohere", __name__, tag="Cohere", error_style=ErrorStyle.COHERE)

#: Cohere's input types -> the model's prompt names.
PROMPTS = {"search_query": "query", "search_document": "document"}


def _cap(engine, texts: list[str], max_tokens: Optional[int], truncate: str, field: str) -> list[str]:
    """Each text cut to `max_tokens` tokens (special tokens not counted) on `truncate`'s side;
    with NONE, raises Unprocessable (422) for a longer one."""
    if not max_tokens:
        return texts
    if truncate != "NONE":
        return engine.cap_tokens(texts, max_tokens, "left" if truncate == "START" else "right")
    tokenize = engine.text_encoder.tokenize
    rows = tokenize(tokenize.windows(texts, max_tokens + 1, "right"), add_special_tokens=False)["input_ids"]
    for index, ids in enumerate(rows):
        if len(ids) > max_tokens:
            raise Unprocessable(
                f"{field}[{index}] has more than {max_tokens} tokens (max_tokens); send truncate START or END to cut it",
                param=field,
            )
    return texts


def _embed(req, version: int):
    entries, field = req.entries()
    reg = engines()
    check_batch_size(len(entries), budgets().max_client_batch_size, field)
    texts = [content for medium, content in entries if medium == "text"]
    sources = [content for medium, content in entries if medium == "image"]
    model_name = req.model or (reg.default(Capability.EMBED_IMAGES, param=field).name if sources else None)
    dimensions = getattr(req, "output_dimension", None)
    rows: list[Optional[np.ndarray]] = [None] * len(entries)
    tokens = 0
    if texts:
        engine = reg.get(resolve(reg, model_name), Capability.EMBED_TEXT)
        texts = _cap(engine, texts, getattr(req, "max_tokens", None), req.truncate, field)
        result = embed_text(
            reg, budgets(), model_name=engine.name, texts=texts, dimensions=dimensions, truncate=req.truncate != "NONE",
            direction="left" if req.truncate == "START" else "right",
            prompt=PromptChoice(input_type=PROMPTS.get(req.input_type or "", req.input_type)),
            param=field, dimensions_field="output_dimension",
        )
        _place(rows, [i for i, (medium, _) in enumerate(entries) if medium == "text"], result.vectors)
        tokens = result.tokens
    if sources:
        result = embed_images(
            reg, budgets(), images(), model_name=model_name, sources=sources, dimensions=dimensions, param=field,
            dimensions_field="output_dimension",
        )
        _place(rows, [i for i, (medium, _) in enumerate(entries) if medium == "image"], result.vectors)
    vectors = np.stack(rows)  # type: ignore[arg-type]
    billed = {"input_tokens": tokens}
    if sources:
        billed["images"] = len(sources)
    api_version = {"version": str(version)}
    # `api_version` at the top as well as in `meta`: Cohere's published document requires both.
    body = {"id": str(uuid.uuid4()), "texts": [content for medium, content in entries if medium == "text"],
            "api_version": api_version, "meta": {"api_version": api_version, "billed_units": billed}}
    if version == 1 and req.embedding_types is None:
        return json_response({**body, "response_type": "embeddings_floats", "embeddings": vectors})
    return json_response({**body, "response_type": "embeddings_by_type", "embeddings": by_type(vectors, req.embedding_types or ["float"])})


def _place(rows: list, indices: Sequence[int], vectors: np.ndarray) -> None:
    for index, vector in zip(indices, vectors):
        rows[index] = vector


@bp.operation(
    "POST", "/v1/embed", summary="Cohere embed v1: texts or images", request=CohereEmbedV1Request,
    response=CohereEmbedResponse, errors=IMAGE_ERRORS, limits=IMAGE_LIMITS,
    budget=Budget(BodyLimit.IMAGES, "text", {"texts": ITEMS, "input_type": "search_document"}),
)
def embed_v1():
    """`{"texts" | "images", "model"?, "input_type"?, "embedding_types"?, "truncate"?}` ->
    `{"id", "response_type", "embeddings", "texts", "meta"}`."""
    return _embed(parse(CohereEmbedV1Request, json_body()), 1)


@bp.operation(
    "POST", "/v2/embed", summary="Cohere embed v2: texts, images or inputs", request=CohereEmbedV2Request,
    response=CohereEmbedResponse, errors=IMAGE_ERRORS, limits=IMAGE_LIMITS,
    budget=Budget(BodyLimit.IMAGES, "text", {"texts": ITEMS, "input_type": "search_document"}),
)
def embed_v2():
    """`{"texts" | "images" | "inputs", "model"?, "input_type"?, "embedding_types"?, "truncate"?,
    "output_dimension"?, "max_tokens"?, "priority"?}` -> `{"id", "response_type":
    "embeddings_by_type", "embeddings": {type: [...]}, "texts", "meta"}`."""
    return _embed(parse(CohereEmbedV2Request, json_body()), 2)
