"""Ollama dialect (seed 002): `POST /api/embed` and the legacy `POST /api/embeddings`.

Errors on these routes are Ollama's flat `{"error": str}` (see errors.FLAT_ERROR_BLUEPRINTS).
Durations are nanoseconds. As in Ollama, `/api/embed` returns L2-normalised vectors and the legacy
`/api/embeddings` returns them unnormalised.
"""

from __future__ import annotations

import time

from flask import Blueprint

from ..schemas import OllamaEmbeddingsRequest, OllamaEmbedRequest, parse
from ..service import embed_text
from .common import engines, json_body, json_response, limits

bp = Blueprint("ollama", __name__)


@bp.post("/api/embed")
def embed():
    """`{"model"?, "input", "truncate"?, "dimensions"?}` -> `{"model", "embeddings",
    "total_duration", "load_duration", "prompt_eval_count"}`."""
    started = time.perf_counter_ns()
    req = parse(OllamaEmbedRequest, json_body())
    texts = [req.input] if isinstance(req.input, str) else req.input
    result = embed_text(
        engines(), limits(), model_name=req.model, texts=texts, dimensions=req.dimensions, truncate=req.truncate,
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


@bp.post("/api/embeddings")
def embeddings():
    """Legacy: `{"model"?, "prompt"}` -> `{"embedding": [float]}` (not normalised, as Ollama)."""
    req = parse(OllamaEmbeddingsRequest, json_body())
    result = embed_text(engines(), limits(), model_name=req.model, texts=[req.prompt], normalize=False, param="prompt")
    return json_response({"embedding": result.vectors[0]})
