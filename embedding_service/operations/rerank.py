"""Reranking, independent of the dialect: score documents against a query, best first.

Three ways to score (query, document):
- a reranker model (cross-encoder or Qwen3-Reranker): relevance = sigmoid(log-odds);
- no reranker configured, a text embedding model: cosine similarity mapped to 0..1, (cos + 1) / 2;
- a multimodal model: its own sigmoid image-text score, sigmoid(cos * exp(logit_scale) + logit_bias),
  for text and image documents alike.
With `max_chunks_per_doc`, a document longer than the window is scored by its best chunk. The
Cohere and TEI response shapes are built by the rerank blueprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from ..inference.engine import Capability, Engine
from ..inference.results import best_per_owner
from ..domain.errors import InvalidInput, LimitExceeded
from ..images import ImageLoader
from ..models.interfaces import Reranker
from ..models.prompts import PromptChoice, ResolvedPrompt
from ..models.text_encoder import TextEncoder
from ..inference.registry import Registry
from .embed import check_batch_size, check_text_chars, l2_normalize, note_usage
from .state import RequestBudgets
from .model_names import resolve
from .retrieval import maxsim_scores


@dataclass
class Ranking:
    """`order`: document indices, best first (ties by index), cut to `top_n`; `scores`
    (documents,) relevance in 0..1 or raw; `label`, the scorer as reported in `model`; `items`
    scored (documents or chunks) and `tokens` fed."""

    order: list[int]
    scores: np.ndarray
    label: str
    items: int
    tokens: int


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values.astype(np.float64)))


def _document(doc: Any, index: int, field: str, rank_fields: Optional[list[str]]) -> tuple[str, str]:
    """("text" | "image", content) of one document; raises InvalidInput naming it."""
    where = f"{field}[{index}]"
    if isinstance(doc, str):
        if not doc:
            raise InvalidInput(f"{where} is an empty string", param=field)
        return "text", doc
    if rank_fields:  # fields it lacks are left out; an object with none of them ranks as empty text
        return "text", "\n".join(f"{name}: {doc[name]}" for name in rank_fields if doc.get(name) is not None)
    if isinstance(doc.get("image"), str) and "text" not in doc:
        return "image", doc["image"]
    if isinstance(doc.get("text"), str) and doc["text"]:
        return "text", doc["text"]
    raise InvalidInput(f'{where} must be a string, {{"text": str}} or {{"image": str}}', param=field)


@dataclass(frozen=True)
class _Options:
    query_prompt: ResolvedPrompt
    document_prompt: ResolvedPrompt
    raw_scores: bool
    truncate: bool
    max_chunks: Optional[int]
    check_chunks: Optional[Callable[[int], None]] = None
    direction: str = "right"


def _with_embeddings(engine: Engine, loader: ImageLoader, query_text: str, media: list[str], contents: list[str], opts: _Options):
    """(scores, label, items, tokens) from the query's and documents' embeddings. With
    `max_chunks`, text documents are chunked (and their chunks counted) before any forward pass."""
    model = engine.text_encoder
    image_rows = [i for i, medium in enumerate(media) if medium == "image"]
    text_rows = [i for i, medium in enumerate(media) if medium == "text"]
    texts = [contents[i] for i in text_rows]
    if image_rows and not engine.can(Capability.EMBED_IMAGES):
        raise InvalidInput(f"image documents need a multimodal model; {engine.name!r} is a {model.kind} model", param="documents")
    document = opts.document_prompt
    chunks = engine.prepare_chunks(texts, document, opts.max_chunks, opts.check_chunks) if texts and opts.max_chunks else None
    query_items = engine.prepare_texts([query_text], opts.query_prompt, True, "right", param="query")
    if chunks is not None:
        document_items, owners = chunks.items, chunks.owners
    elif texts:
        document_items = engine.prepare_texts(texts, document, opts.truncate, opts.direction, param="documents")
        owners = list(range(len(texts)))
    else:
        document_items, owners = [], []
    # The query and the text documents take one queue trip (images are another kind of item).
    encoded = engine.encode(query_items + document_items)
    vectors = l2_normalize(encoded.vectors)
    query = vectors[0]
    cos = np.zeros(len(contents))
    tokens, scored = encoded.tokens, len(document_items)
    if image_rows:
        images = loader.load(
            [contents[i] for i in image_rows], param="documents", size=engine.image_encoder.image_input_size,
            indices=image_rows,
        )
        cos[image_rows] = l2_normalize(engine.embed_images(images).vectors) @ query
        scored += len(image_rows)
    if text_rows:
        cos[text_rows] = best_per_owner(vectors[1:] @ query, owners, len(texts))
    if model.similarity_scale is not None:
        scale, bias = model.similarity_scale
        logits = cos * scale + bias
        return (logits if opts.raw_scores else _sigmoid(logits)), f"{engine.name} (sigmoid image-text score)", scored, tokens
    return (cos if opts.raw_scores else (cos + 1.0) / 2.0), f"{engine.name} (cosine similarity)", scored, tokens


def _check_pair_chars(
    model: Reranker, query: str, instruction: Optional[str], contents: list[str], budgets: RequestBudgets, field: str
) -> None:
    """MAX_INPUT_CHARS and MAX_REQUEST_CHARS for a pair model, which sees the query (and the
    instruction) again with every document; raises LimitExceeded (413)."""
    around = model.pair_chars(query, instruction)
    with_query = "query and instruction" if model.takes_instruction else "query"
    check_text_chars([around], budgets, "query", "instruction included" if model.takes_instruction else "", item="{param}")
    check_text_chars(
        [around + len(text) for text in contents], budgets, field, f"{with_query} included",
        total_seen=f"{with_query} counted with every document",
    )


def _check_embedding_chars(
    model: TextEncoder, query: str, instruction: Optional[str], media: list[str], contents: list[str],
    budgets: RequestBudgets, field: str,
) -> tuple[ResolvedPrompt, ResolvedPrompt]:
    """MAX_INPUT_CHARS and MAX_REQUEST_CHARS when ranking by embeddings: the query (with its
    prompt or instruction) is embedded once, each text document with the document prompt; raises
    LimitExceeded (413). Returns the query's and the documents' prompts, resolved once."""
    query_prompt = model.prompt_for(PromptChoice(input_type="query", instruction=instruction))
    query_chars = len(query_prompt.prefix) + len(query)
    check_text_chars([query_chars], budgets, "query", query_prompt.note, item="{param}")
    document_prompt = model.prompt_for(PromptChoice(input_type="document"))
    seen = document_prompt.note
    check_text_chars(
        [len(document_prompt.prefix) + len(text) if medium == "text" else 0 for medium, text in zip(media, contents)],
        budgets, field, seen, extra=query_chars, total_seen=f"{seen}, query once" if seen else "query included once",
    )
    return query_prompt, document_prompt


def _chunk_limit(budgets: RequestBudgets, field: str, max_chunks: int) -> Callable[[int], None]:
    """The check of MAX_RERANK_CHUNKS, run after chunking and before any forward pass."""

    def check(count: int) -> None:
        if count > budgets.max_rerank_chunks:
            raise LimitExceeded(
                f"{field} make {count} chunks with max_chunks_per_doc {max_chunks}; at most "
                f"{budgets.max_rerank_chunks} per request (MAX_RERANK_CHUNKS)",
                param=field,
            )

    return check


def choose_engine(engines: Registry, name: Optional[str]) -> Engine:
    """The named model (a reranker, or a text or multimodal model scoring by embeddings); with no
    name, the first reranker, else the first configured model if it embeds text, else the
    default text model. raises ModelNotFound (404), InvalidInput (400)."""
    if name:
        engine = engines.find(resolve(engines, name))
        if not any(engine.can(c) for c in (Capability.SCORE_PAIRS, Capability.EMBED_TEXT, Capability.MULTI_VECTOR)):
            raise InvalidInput(f"model {engine.name!r} is a {engine.model.kind} model and cannot do reranking", param="model")
        return engine
    if engines.has(Capability.SCORE_PAIRS):
        return engines.default(Capability.SCORE_PAIRS)
    return engines.get(None, Capability.EMBED_TEXT, prefer_first=True)


def rerank(
    engines: Registry, budgets: RequestBudgets, loader: ImageLoader, query: str, documents: list, *, field: str = "documents",
    model: Optional[str] = None, instruction: Optional[str] = None, top_n: Optional[int] = None, raw_scores: bool = False,
    truncate: bool = True, max_chunks_per_doc: Optional[int] = None, max_tokens_per_doc: Optional[int] = None,
    rank_fields: Optional[list[str]] = None, direction: str = "right",
) -> Ranking:
    """Score every document (a string, or an object with `text` or `image`, or read through
    `rank_fields`; from request field `field`) against `query` and order them, best first (ties
    by index), cut to `top_n`. `raw_scores` keeps log-odds (or cosines); `max_chunks_per_doc`
    scores a long document by its best chunk; `max_tokens_per_doc` cuts each document first;
    `direction` is the side an over-long document is cut on (TEI's `truncation_direction`: "left"
    keeps its end), when ranking by embeddings; pair rerankers keep the query and cut the
    document's end only ("left" is refused).

    raises ModelNotFound (404), InvalidInput (400; "left" for a pair reranker), LimitExceeded (413: more documents than
    MAX_CLIENT_BATCH_SIZE; a query or document over MAX_INPUT_CHARS or all of them over
    MAX_REQUEST_CHARS as the model sees them, a pair model seeing the query and instruction with
    every document; with `max_chunks_per_doc`, more chunks than MAX_RERANK_CHUNKS, before any
    forward pass; more pairs or chunks than the model's queue holds, MAX_QUEUE_SIZE),
    Unprocessable (422: over-long with truncate false), the image errors.
    """
    check_batch_size(len(documents), budgets.max_client_batch_size, field)
    pairs = [_document(doc, i, field, rank_fields) for i, doc in enumerate(documents)]
    media, contents = [p[0] for p in pairs], [p[1] for p in pairs]
    engine = choose_engine(engines, model)
    check_chunks = _chunk_limit(budgets, field, max_chunks_per_doc) if max_chunks_per_doc else None
    if engine.can(Capability.SCORE_PAIRS):
        if "image" in media:
            raise InvalidInput(f"model {engine.name!r} ranks text; image documents need a multimodal model", param=field)
        if direction != "right":
            raise InvalidInput(
                f"model {engine.name!r} is a pair reranker: it keeps the query and cuts a long document's end; "
                "send truncation_direction right", param="truncation_direction",
            )
        _check_pair_chars(engine.reranker, query, instruction, contents, budgets, field)
        pair = engine.score_pairs(
            query, engine.cap_tokens(contents, max_tokens_per_doc), instruction, truncate, max_chunks_per_doc,
            check=check_chunks,
        )
        scores = pair.raw if raw_scores else _sigmoid(pair.raw)
        label, items, tokens = engine.name, pair.items, pair.tokens
    elif engine.can(Capability.MULTI_VECTOR):
        if "image" in media:
            raise InvalidInput(f"model {engine.name!r} ranks text by MaxSim over its token vectors; image documents "
                               "need a multimodal model", param=field)
        prompts = _check_embedding_chars(engine.text_encoder, query, instruction, media, contents, budgets, field)
        contents = engine.cap_tokens(contents, max_tokens_per_doc, direction)
        scores, items, tokens = maxsim_scores(engine, query, contents, prompts, truncate, direction, max_chunks_per_doc,
                                              check_chunks)
        label = f"{engine.name} (MaxSim)"
    else:
        prompts = _check_embedding_chars(engine.text_encoder, query, instruction, media, contents, budgets, field)
        capped = iter(engine.cap_tokens([c for c, m in zip(contents, media) if m == "text"], max_tokens_per_doc, direction))
        contents = [next(capped) if m == "text" else c for c, m in zip(contents, media)]
        opts = _Options(*prompts, raw_scores, truncate, max_chunks_per_doc, check_chunks, direction)
        scores, label, items, tokens = _with_embeddings(engine, loader, query, media, contents, opts)
    note_usage(engine.name, len(documents), tokens)
    order = sorted(range(len(documents)), key=lambda i: (-scores[i], i))
    if top_n is not None:
        order = order[:top_n]
    return Ranking(order, scores, label, items, tokens)
