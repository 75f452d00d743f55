"""Reranking (SPEC §1 `rerank` recipes, §2 rerank routes), independent of the route's version.

Three ways to score (query, document):
- a reranker model (cross-encoder or Qwen3-Reranker): relevance = sigmoid(log-odds);
- no reranker configured, a text embedding model: cosine similarity mapped to 0..1, (cos + 1) / 2;
- a multimodal model: its own sigmoid image-text score, sigmoid(cos * exp(logit_scale) + logit_bias),
  for text and image documents alike.
With `max_chunks_per_doc`, a document longer than the window is scored by its best chunk.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .errors import BadRequest
from .images import ImageLoader
from .models.base import PromptChoice, Reranker, TextEncoder
from .models.multimodal import MultimodalModel
from .registry import Registry
from .schemas import RerankRequest
from .service import check_batch_size, check_input_chars, note_usage

RERANK_KINDS = ("rerank", "text", "multimodal")
#: Cohere bills one search unit per query with up to 100 documents (or chunks).
DOCS_PER_SEARCH_UNIT = 100


@dataclass
class Scored:
    """One score per document (`scores`, relevance or raw), the label of the scorer, how many
    (document or chunk) items were scored and the tokens fed."""

    scores: np.ndarray
    label: str
    items: int
    tokens: int


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values.astype(np.float64)))


def _document(doc: Any, index: int, field: str, rank_fields: Optional[list[str]]) -> tuple[str, str]:
    """("text" | "image", content) of one document; raises BadRequest naming it."""
    where = f"{field}[{index}]"
    if isinstance(doc, str):
        if not doc:
            raise BadRequest(f"{where} is an empty string", param=field)
        return "text", doc
    if rank_fields:
        parts = [f"{name}: {doc[name]}" for name in rank_fields if name in doc and doc[name] is not None]
        if not parts:
            raise BadRequest(f"{where} has none of the rank_fields {rank_fields}", param=field)
        return "text", "\n".join(parts)
    if isinstance(doc.get("image"), str) and "text" not in doc:
        return "image", doc["image"]
    if isinstance(doc.get("text"), str) and doc["text"]:
        return "text", doc["text"]
    raise BadRequest(f'{where} must be a string, {{"text": str}} or {{"image": str}}', param=field)


def _best_per_document(raw: np.ndarray, owners: list[int], count: int) -> np.ndarray:
    best = np.full(count, -np.inf)
    np.maximum.at(best, np.asarray(owners, dtype=np.int64), raw.astype(np.float64))
    return best


def _with_reranker(registry: Registry, model: Reranker, req: RerankRequest, texts: list[str]) -> Scored:
    if req.instruction is not None and not model.takes_instruction:
        raise BadRequest(f"model {model.name!r} is a cross-encoder and takes no instruction", param="instruction")
    items = model.prepare_pairs(req.query, texts, req.instruction, req.truncate, req.max_chunks_per_doc)
    raw = registry.batchers[model.name].run(items)[:, 0]
    best = _best_per_document(raw, [item.owner for item in items], len(texts))
    scores = best if req.raw_scores else _sigmoid(best)
    return Scored(scores, model.name, len(items), sum(len(item) for item in items))


def _with_embeddings(
    registry: Registry, loader: ImageLoader, model: TextEncoder, req: RerankRequest, kinds: list[str], contents: list[str]
) -> Scored:
    batcher = registry.batchers[model.name]
    query_prompt = PromptChoice(input_type="query", instruction=req.instruction)
    query_items = model.prepare_texts([req.query], query_prompt, True, "right", param="query")
    query = _unit(batcher.run(query_items))[0]
    cos = np.zeros(len(contents))
    tokens, scored = len(query_items[0]), 0
    image_rows = [i for i, kind in enumerate(kinds) if kind == "image"]
    text_rows = [i for i, kind in enumerate(kinds) if kind == "text"]
    if image_rows:
        if not isinstance(model, MultimodalModel):
            raise BadRequest(f"image documents need a multimodal model; {model.name!r} is a {model.kind} model", param="documents")
        images = loader.load([contents[i] for i in image_rows], param="documents")
        cos[image_rows] = _unit(batcher.run(model.prepare_images(images))) @ query
        scored += len(image_rows)
    if text_rows:
        texts = [contents[i] for i in text_rows]
        document = PromptChoice(input_type="document")
        if req.max_chunks_per_doc:
            items, owners = model.prepare_chunks(texts, document, req.max_chunks_per_doc)
        else:
            items, owners = model.prepare_texts(texts, document, req.truncate, "right", param="documents"), list(range(len(texts)))
        cos[text_rows] = _best_per_document(_unit(batcher.run(items)) @ query, owners, len(texts))
        tokens, scored = tokens + sum(map(len, items)), scored + len(items)
    if isinstance(model, MultimodalModel):
        logits = cos * model.logit_scale + model.logit_bias
        scores = logits if req.raw_scores else _sigmoid(logits)
        return Scored(scores, f"{model.name} (sigmoid image-text score)", scored, tokens)
    scores = cos if req.raw_scores else (cos + 1.0) / 2.0
    return Scored(scores, f"{model.name} (cosine similarity)", scored, tokens)


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def _cap_document_tokens(model, texts: list[str], limit: Optional[int]) -> list[str]:
    """`max_tokens_per_doc` (Cohere v2): keep each document's first `limit` tokens."""
    if not limit:
        return texts
    out = []
    for text in texts:
        ids = model.tokenizer.encode(text, add_special_tokens=False)
        out.append(text if len(ids) <= limit else model.tokenizer.decode(ids[:limit]))
    return out


def rerank(registry: Registry, loader: ImageLoader, req: RerankRequest, api_version: int, return_documents: bool) -> dict:
    """Score, sort (best first, ties by index) and shape the Cohere response.

    raises ModelNotFound (404), BadRequest (400), PayloadTooLarge (413: more documents than
    MAX_CLIENT_BATCH_SIZE), Unprocessable (422: over-long with truncate false), image errors.
    """
    docs, field = req.items()
    check_batch_size(len(docs), registry.settings.max_client_batch_size, field)
    pairs = [_document(doc, i, field, req.rank_fields) for i, doc in enumerate(docs)]
    kinds, contents = [p[0] for p in pairs], [p[1] for p in pairs]
    limit = registry.settings.max_input_chars
    check_input_chars([req.query], limit, "query")
    check_input_chars([c if k == "text" else "" for c, k in zip(contents, kinds)], limit, field)
    if req.model:
        model = registry.get(req.model, RERANK_KINDS, "reranking")
    else:
        model = registry.default_of("rerank") or registry.get(None, ("text", "multimodal"), "reranking", prefer_first=True)
    if isinstance(model, Reranker):
        if "image" in kinds:
            raise BadRequest(f"model {model.name!r} ranks text; image documents need a multimodal model", param=field)
        scored = _with_reranker(registry, model, req, _cap_document_tokens(model, contents, req.max_tokens_per_doc))
    else:
        assert isinstance(model, TextEncoder)
        texts_capped = _cap_document_tokens(model, [c for c, k in zip(contents, kinds) if k == "text"], req.max_tokens_per_doc)
        it = iter(texts_capped)
        contents = [next(it) if k == "text" else c for c, k in zip(contents, kinds)]
        scored = _with_embeddings(registry, loader, model, req, kinds, contents)
    note_usage(model.name, len(docs), scored.tokens)
    order = sorted(range(len(docs)), key=lambda i: (-scored.scores[i], i))
    if req.top_n is not None:
        order = order[: req.top_n]
    results = []
    for index in order:
        row = {"index": index, "relevance_score": float(scored.scores[index])}
        if return_documents:
            doc = docs[index]
            row["document"] = {"text": doc} if isinstance(doc, str) else doc
        results.append(row)
    return {
        "id": f"rerank-{uuid.uuid4().hex[:16]}",
        "model": scored.label,
        "results": results,
        "meta": {
            "api_version": {"version": str(api_version)},
            "billed_units": {"search_units": max(1, math.ceil(scored.items / DOCS_PER_SEARCH_UNIT))},
            "tokens": {"input_tokens": scored.tokens, "output_tokens": 0},
        },
    }
