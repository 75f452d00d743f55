"""Cohere dialect of reranking: `POST /rerank`, `/v1/rerank`, `/v2/rerank`; and TEI's on `/rerank`.

`meta.api_version.version` is "2" on `/v2/rerank` and "1" elsewhere. `return_documents` defaults
to true on `/rerank` (the plain reranking API) and to false on Cohere's `/v1/rerank` and
`/v2/rerank`, as each of those clients expects; TEI's `return_text` is the same switch. Cohere
bills one search unit per query with up to 100 documents (or chunks).

TEI's request and Cohere's are told apart on `/rerank` only, by the request: `texts` (not
`documents`) together with one of the fields only TEI has (`truncation_direction`, `raw_scores`,
`return_text`) is TEI's, answered with TEI's list `[{"index", "score", "text"?}]` (best first,
`text` with `return_text`, default false). Everything else, a bare `{"query", "texts"}` included
(the plain rerank API's request), gets Cohere's body. `/v1/rerank` and `/v2/rerank` always answer
Cohere's body.
"""

from __future__ import annotations

import math
import uuid

from ....domain.errors import InvalidInput
from ...responses import PlainRerankResponse, RerankResponse
from ....operations.rerank import Ranking, rerank
from ...schemas import RerankRequest, parse
from ...json_io import engines, images, json_body, json_response, limits
from ...routing import IMAGE_ERRORS, RERANK_LIMITS, ApiBlueprint

bp = ApiBlueprint("rerank", __name__, tag="Cohere")

#: path -> (Cohere API version, documents returned by default, OpenAPI summary)
ROUTES = {
    "/rerank": (1, True, "Rerank (documents returned by default)"),
    "/v1/rerank": (1, False, "Rerank, Cohere v1"),
    "/v2/rerank": (2, False, "Rerank, Cohere v2"),
}
#: Cohere bills one search unit per query with up to this many documents (or chunks).
DOCS_PER_SEARCH_UNIT = 100


def cohere_response(ranking: Ranking, documents: list, api_version: int, return_documents: bool) -> dict:
    """Cohere's rerank body: `id`, `results` [{index, relevance_score, document?}], `model`,
    `meta` {api_version, billed_units.search_units, tokens}."""
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
    }


def tei_ranks(ranking: Ranking, texts: list, return_text: bool) -> list[dict]:
    """TEI's rerank answer: `[{"index", "score", "text"?}]`, best first."""
    rows = []
    for index in ranking.order:
        row = {"index": index, "score": float(ranking.scores[index])}
        if return_text:
            row["text"] = texts[index]
        rows.append(row)
    return rows


def _handler(version: int, documents_by_default: bool, tei: bool):
    def view():
        req = parse(RerankRequest, json_body())
        if req.return_documents is not None and req.return_text is not None and req.return_documents != req.return_text:
            raise InvalidInput("return_documents and return_text disagree; send one", param="return_text")
        tei_shaped = tei and req.tei_shaped()
        default = False if tei_shaped else documents_by_default  # TEI's return_text defaults to false
        chosen = next((v for v in (req.return_documents, req.return_text) if v is not None), default)
        documents, field = req.items()
        ranking = rerank(
            engines(), limits(), images(), req.query, documents, field=field, model=req.model, instruction=req.instruction,
            top_n=req.top_n, raw_scores=req.raw_scores, truncate=req.truncate, max_chunks_per_doc=req.max_chunks_per_doc,
            max_tokens_per_doc=req.max_tokens_per_doc, rank_fields=req.rank_fields, direction=req.truncation_direction,
        )
        if tei_shaped:
            return json_response(tei_ranks(ranking, documents, chosen))
        return json_response(cohere_response(ranking, documents, version, chosen))

    return view


for _path, (_version, _default, _summary) in ROUTES.items():
    _tei = _path == "/rerank"
    bp.add_operation(
        _path, f"rerank_v{_version}{_path.replace('/', '_')}", _handler(_version, _default, _tei), "POST",
        summary=_summary + ("; TEI's request gets TEI's answer" if _tei else ""), request=RerankRequest,
        response=PlainRerankResponse if _tei else RerankResponse, errors=IMAGE_ERRORS, models="all",
        limits=RERANK_LIMITS,
    )
