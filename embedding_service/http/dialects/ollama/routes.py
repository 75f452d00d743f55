"""Ollama dialect: `POST /api/embed` and the legacy `POST /api/embeddings`.

Errors on these routes are Ollama's flat `{"error": str}`: the blueprint declares
`ErrorStyle.FLAT` for every route on it (a 405 on these paths too).
Durations are nanoseconds. As in Ollama, `/api/embed` returns L2-normalised vectors and the legacy
`/api/embeddings` returns them unnormalised.
"""

from __future__ import annotations

import time

from ...errors import ErrorStyle
from .responses import OllamaEmbeddingsResponse, OllamaEmbedResponse
from ...schemas import parse
from .schemas import OllamaEmbeddingsRequest, OllamaEmbedRequest
from ....operations.embed import embed_text
from ...json_io import engines, json_body, json_response, budgets
from ...budgets import ITEMS, ONE_ITEM, BodyLimit, Budget
from ...routing import EMBED_ERRORS, TEXT_LIMITS, ApiBlueprint

bp = ApiBlueprint("ollama", __name__, tag="Ollama", error_style=ErrorStyle.FLAT)


@bp.operation(
    "POST", "/api/embed", summary="Ollama embed (durations in ns)",
    request=OllamaEmbedRequest, response=OllamaEmbedResponse, errors=EMBED_ERRORS, limits=TEXT_LIMITS,
    budget=Budget(BodyLimit.TEXT, "text", {"input": ITEMS}),
)
def embed():
    """`{"model"?, "input", "truncate"?, "dimensions"?}` -> `{"model", "embeddings",
    "total_duration", "load_duration", "prompt_eval_count"}`."""
    started = time.perf_counter_ns()
    req = parse(OllamaEmbedRequest, json_body())
    texts = [req.input] if isinstance(req.input, str) else req.input
    result = embed_text(
        engines(), budgets(), model_name=req.model, texts=texts, dimensions=req.dimensions, truncate=req.truncate,
        param="input",
    )
    return json_response(
        {
            "model": result.model.name,
            "embeddings": result.vectors,
            "total_duration": time.perf_counter_ns() - started,
            "load_duration": int(result.model.load_seconds * 1e9),
            "prompt_eval_count": result.tokens,
        }
    )


@bp.operation(
    "POST", "/api/embeddings", summary="Ollama legacy embeddings (not normalised)",
    request=OllamaEmbeddingsRequest, response=OllamaEmbeddingsResponse, errors=EMBED_ERRORS,
    limits=TEXT_LIMITS, budget=Budget(BodyLimit.TEXT, "text", {"prompt": ONE_ITEM}),
)
def embeddings():
    """Legacy: `{"model"?, "prompt"}` -> `{"embedding": [float]}` (not normalised, as Ollama)."""
    req = parse(OllamaEmbeddingsRequest, json_body())
    result = embed_text(engines(), budgets(), model_name=req.model, texts=[req.prompt], normalize=False, param="prompt")
    return json_response({"embedding": result.vectors[0]})
