"""Cohere dialect of reranking: `POST /v1/rerank`, `/v2/rerank` (and the Cohere side of
`POST /rerank`, which it shares with TEI: `http/shared_paths.py`).

`meta.api_version.version` is "2" on `/v2/rerank` and "1" elsewhere. `return_documents` defaults
to true on `/rerank` (the plain reranking API) and to false on Cohere's `/v1/rerank` and
`/v2/rerank`, as each of those clients expects; TEI's `return_text` is the same switch. Cohere
bills one search unit per query with up to 100 documents (or chunks).

TEI's request and Cohere's are told apart on `/rerank` only, by the request: `texts` (not
`documents`) together with one of the fields only TEI has (`truncation_direction`, `raw_scores`,
`return_text`, `truncate`) is TEI's, answered with TEI's list `[{"index", "score", "text"?}]` (best first,
`text` with `return_text`, default false). Everything else, a bare `{"query", "texts"}` included
(the plain rerank API's request), gets Cohere's body. `/v1/rerank` and `/v2/rerank` always answer
Cohere's body.

vLLM's `use_activation: false` (or its older `softmax`, `activation`) asks for raw scores, as
`raw_scores: true` does.

Errors are Cohere's `{"id", "message"}`, or vLLM's nested body for vLLM's request (one with
`truncate_prompt_tokens`, `use_activation`, `softmax` or `activation`) and TEI's for TEI's on `/rerank`: :func:`rerank_error_style`.
"""

from __future__ import annotations

import math
import uuid
from typing import Any, Optional

from ....domain.errors import InvalidInput
from .responses import RerankResponse
from ....operations.rerank import Ranking, rerank
from ...schemas import parse
from .schemas import RerankRequest, rerank_dialect
from ...errors import ErrorStyle
from ...json_io import engines, images, json_body, json_response, budgets
from ...budgets import ITEMS, BodyLimit, Budget
from ...routing import IMAGE_ERRORS, RERANK_LIMITS, ApiBlueprint

bp = ApiBlueprint("rerank", __name__, tag="Cohere", error_style=ErrorStyle.COHERE)

#: The error style of each rerank dialect (:func:`.schemas.rerank_dialect`).
RERANK_STYLES = {"tei": ErrorStyle.TEI, "vllm": ErrorStyle.VLLM, "cohere": ErrorStyle.COHERE}


def rerank_error_style(_request: Any, body: Any) -> Optional[ErrorStyle]:
    """`POST /rerank`: the error style of the request's dialect, from its parsed body (routing's
    `pick_error_style`; nothing to pick before the body is read)."""
    return None if body is None else RERANK_STYLES[rerank_dialect(body)]


def versioned_rerank_error_style(_request: Any, body: Any) -> Optional[ErrorStyle]:
    """`/v1/rerank` and `/v2/rerank`: vLLM's for vLLM's request, else Cohere's (these paths never
    answer TEI's shape, so a TEI-looking request is Cohere's here)."""
    return ErrorStyle.VLLM if body is not None and rerank_dialect(body) == "vllm" else None


#: path -> (Cohere API version, documents returned by default, OpenAPI summary)
#: (`POST /rerank`, shared with TEI, is `http/shared_paths.py`: API version 1, documents returned
#: by default.)
ROUTES = {
    "/v1/rerank": (1, False, "Rerank, Cohere v1"),
    "/v2/rerank": (2, False, "Rerank, Cohere v2"),
}
#: Cohere bills one search unit per query with up to this many documents (or chunks).
DOCS_PER_SEARCH_UNIT = 100


def cohere_response(ranking: Ranking, documents: list, api_version: int, return_documents: bool) -> dict:
    """Cohere's rerank body: `id`, `results` [{index, relevance_score, document?}], `model`,
    `meta` {api_version, billed_units.search_units, tokens}; plus vLLM's and Jina's `usage`
    {prompt_tokens, total_tokens} (their rerank answers carry it; Cohere's SDK ignores it)."""
    results = []
    for index in ranking.order:
        row = {"index": index, "relevance_score": float(ranking.scores[index])}
        if return_documents:
            doc = documents[index]
            row["document"] = {"text": doc} if isinstance(doc, str) else doc
        results.append(row)
    return {
        "id": f"rerank-{uuid.uuid4().hex[:16]}",
        "model": ranking.label,
        "results": results,
        "meta": {
            "api_version": {"version": str(api_version)},
            "billed_units": {"search_units": max(1, math.ceil(ranking.items / DOCS_PER_SEARCH_UNIT))},
            "tokens": {"input_tokens": ranking.tokens, "output_tokens": 0},
        },
        "usage": {"prompt_tokens": ranking.tokens, "total_tokens": ranking.tokens},
    }


def run_rerank(req: RerankRequest, documents_by_default: bool) -> tuple[Ranking, list, bool]:
    """Rerank `req`: (the ranking, the documents as sent, whether to return them: the request's
    `return_documents` or `return_text`, else `documents_by_default`). raises InvalidInput when
    `return_documents` and `return_text` disagree."""
    if req.return_documents is not None and req.return_text is not None and req.return_documents != req.return_text:
        raise InvalidInput("return_documents and return_text disagree; send one", param="return_text")
    chosen = next((v for v in (req.return_documents, req.return_text) if v is not None), documents_by_default)
    documents, field = req.items()
    ranking = rerank(
        engines(), budgets(), images(), req.query, documents, field=field, model=req.model, instruction=req.instruction,
        top_n=req.top_n, raw_scores=req.wants_raw_scores(), truncate=req.truncate, max_chunks_per_doc=req.max_chunks_per_doc,
        max_tokens_per_doc=req.max_tokens_per_doc, rank_fields=req.rank_fields, direction=req.truncation_direction,
    )
    return ranking, documents, chosen


def _handler(version: int, documents_by_default: bool):
    def view():
        ranking, documents, chosen = run_rerank(parse(RerankRequest, json_body()), documents_by_default)
        return json_response(cohere_response(ranking, documents, version, chosen))

    return view


for _path, (_version, _default, _summary) in ROUTES.items():
    bp.add_operation(
        _path, f"rerank_v{_version}{_path.replace('/', '_')}", _handler(_version, _default), "POST",
        summary=_summary, request=RerankRequest, response=RerankResponse, errors=IMAGE_ERRORS, models="all",
        error_styles=(ErrorStyle.VLLM,), pick_error_style=versioned_rerank_error_style,
        limits=RERANK_LIMITS, budget=Budget(BodyLimit.IMAGES, "text", {"query": "what is a cat?", "documents": ITEMS}),
    )
