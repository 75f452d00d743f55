"""Paths that two dialects share, each request answered by the dialect its shape belongs to.

- `POST /embed`: TEI's `{"inputs": ...}` (text), the SigLIP service's `{"images": [...]}`, or a
  multipart upload of image files (SigLIP service). Both answer `[[float]]`.
- `POST /rerank`: Cohere's request (and the plain rerank API's bare `{"query", "texts"}`), or
  TEI's: `texts` (not `documents`) together with a field only TEI has (`truncation_direction`,
  `raw_scores`, `return_text`, `truncate`), answered with TEI's `[{"index", "score", "text"?}]`, best first,
  `text` only with `return_text`. Cohere's body returns the documents by default on this path.

Errors take the dialect's shape too: TEI's `{"error", "error_type"}` for TEI's requests (and
before the body is read on `/embed`), the nested body for the SigLIP service's, Cohere's
`{"id", "message"}` for Cohere's rerank request (the default on `/rerank`) and vLLM's nested body
for vLLM's (`truncate_prompt_tokens`).

The dialects stay independent of each other; only this module knows both sides of a path.
"""

from __future__ import annotations

from typing import Any, Optional, Union

from flask import request
from pydantic import RootModel

from ..domain.errors import InvalidInput
from .dialects.cohere.rerank import cohere_response, rerank_error_style, run_rerank
from .dialects.siglip.routes import embed_image_body, embed_uploads
from .dialects.tei.routes import embed_inputs, tei_ranks
from .json_io import json_body, json_response
from .dialects.cohere.responses import RerankResponse
from .dialects.tei.responses import TEIRank
from .responses import VECTORS
from .budgets import ITEMS, BodyLimit, Budget
from .errors import ErrorStyle
from .routing import IMAGE_ERRORS, IMAGE_LIMITS, RERANK_LIMITS, ApiBlueprint
from .dialects.cohere.schemas import RerankRequest
from .dialects.siglip.schemas import ImageEmbedRequest
from .dialects.tei.schemas import TEIEmbedRequest
from .schemas import parse

class PlainRerankResponse(RootModel[Union[RerankResponse, list[TEIRank]]]):
    """`/rerank`: Cohere's body, or TEI's list for TEI's request (`RerankRequest.tei_shaped`)."""


bp = ApiBlueprint("shared", __name__, tag="TEI / SigLIP service")


def _embed_error_style(req: Any, body: Any) -> Optional[ErrorStyle]:
    """The SigLIP service's requests (a multipart upload, or `images` without `inputs`) answer
    the nested error body, even for what is found before the body is read (its size, its parts);
    everything else on `/embed` is TEI's."""
    if req.mimetype == "multipart/form-data":
        return ErrorStyle.NESTED
    return ErrorStyle.NESTED if isinstance(body, dict) and "images" in body and "inputs" not in body else None


@bp.operation(
    "POST", "/embed", summary="TEI `inputs` (text) or `images` -> [[float]]; multipart image upload too",
    request=(TEIEmbedRequest, ImageEmbedRequest), response=VECTORS, errors=IMAGE_ERRORS, multipart=True,
    limits=IMAGE_LIMITS, budget=Budget(BodyLimit.IMAGES, "text", {"inputs": ITEMS}),
    error_style=ErrorStyle.TEI, error_styles=(ErrorStyle.NESTED,), pick_error_style=_embed_error_style,
)
def embed_route():
    """TEI text (`inputs`), images (`images`), or a multipart upload of image files ->
    `[[float]]`, one row per input."""
    if request.mimetype == "multipart/form-data":
        return embed_uploads()
    body = json_body()
    if isinstance(body, dict) and "images" in body and "inputs" not in body:
        return embed_image_body(body)
    if isinstance(body, dict) and "inputs" not in body:
        raise InvalidInput('send "inputs" (text, TEI) or "images" (images)', param="inputs")
    return embed_inputs(body)


@bp.operation(
    "POST", "/rerank", summary="Rerank (documents returned by default); TEI's request gets TEI's answer",
    tag="Cohere", request=RerankRequest, response=PlainRerankResponse, errors=IMAGE_ERRORS, models="all",
    limits=RERANK_LIMITS, budget=Budget(BodyLimit.IMAGES, "text", {"query": "what is a cat?", "documents": ITEMS}),
    error_style=ErrorStyle.COHERE, error_styles=(ErrorStyle.TEI, ErrorStyle.VLLM), pick_error_style=rerank_error_style,
)
def rerank_route():
    """Cohere's (or the plain API's) rerank body, or TEI's list for a TEI-shaped request."""
    req = parse(RerankRequest, json_body())
    tei_shaped = req.tei_shaped()
    ranking, documents, chosen = run_rerank(req, documents_by_default=not tei_shaped)  # TEI's return_text: false
    if tei_shaped:
        return json_response(tei_ranks(ranking, documents, chosen))
    return json_response(cohere_response(ranking, documents, 1, chosen))
