"""Dialect-independent embedding operations: what every embedding route does once its request is
parsed.

Blueprints translate their dialect into these calls and the result back into their response
shape; validation that depends on configuration (request budgets, model dimension) lives here so
each dialect gets it identically. Request budgets are passed in explicitly (the app's
RequestBudgets); the engines carry none.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np

from ..observability import tracing
from ..observability.request_stats import current_stats, timed
from ..inference.engine import Capability, Engine
from ..domain.errors import InvalidInput, LimitExceeded
from ..images import ImageLoader
from ..models.prompts import PromptChoice
from ..inference.registry import Registry
from .state import RequestBudgets
from .model_names import resolve


@dataclass
class Embeddings:
    """`vectors` (n, dim) float32 (L2-normalised unless asked otherwise), the `model` (engine)
    used, the number of `tokens` fed (special tokens included) and the wall time in `seconds`."""

    vectors: np.ndarray
    model: Engine
    tokens: int
    seconds: float


def note_usage(model: str, items: int, tokens: int) -> None:
    """Record the request's model, inputs and tokens for the access log and metrics."""
    stats = current_stats.get()
    if stats is not None:
        stats.model, stats.items, stats.tokens = model, stats.items + items, stats.tokens + tokens


def check_batch_size(count: int, limit: int, param: str) -> None:
    """raises LimitExceeded (413) when a request carries more than `limit` inputs."""
    if count > limit:
        raise LimitExceeded(
            f"{param} has {count} items; at most {limit} per request (MAX_CLIENT_BATCH_SIZE)", param=param
        )


def check_text_chars(
    sizes: Sequence[int], budgets: RequestBudgets, param: str, seen: str = "", *, extra: int = 0,
    total_seen: Optional[str] = None, item: str = "{param}[{index}]",
) -> None:
    """raises LimitExceeded (413) when one input has more than MAX_INPUT_CHARS characters or the
    request more than MAX_REQUEST_CHARS, before any tokenising: a tokenizer's cost grows with the
    text, not with the model's window.

    `sizes`: the characters of each input as the model sees it (prompt, instruction or, for a pair
    model, the query included), named `item` in messages; `seen` says what an input includes and
    `total_seen` what the request's sum does (default `seen`); `extra`: characters the request adds
    once (a ranking's query, embedded once).
    """

    def shown(note: str) -> str:
        return f" as the model sees them ({note})" if note else ""

    for index, size in enumerate(sizes):
        if size > budgets.max_input_chars:
            raise LimitExceeded(
                f"{item.format(param=param, index=index)} has {size} characters{shown(seen)}; at most "
                f"{budgets.max_input_chars} per input (MAX_INPUT_CHARS)",
                param=param,
            )
    total = extra + sum(sizes)
    if total > budgets.max_request_chars:
        raise LimitExceeded(
            f"{param} has {total} characters{shown(seen if total_seen is None else total_seen)}; at most "
            f"{budgets.max_request_chars} per request (MAX_REQUEST_CHARS)",
            param=param,
        )


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Each row divided by its L2 norm (at least 1e-12, as `torch.nn.functional.normalize`):
    (n, dim) -> (n, dim), the input's dtype. The service's one normalisation."""
    norms = np.sqrt(np.add.reduce(vectors * vectors, axis=1, keepdims=True))  # np.linalg.norm's arithmetic, no checks
    return vectors / np.maximum(norms, 1e-12)


def postprocess(vectors: np.ndarray, dimensions: Optional[int], normalize: bool) -> np.ndarray:
    """Matryoshka truncation to `dimensions`, then :func:`l2_normalize`.
    (n, dim) float32 -> (n, dimensions or dim) float32."""
    with tracing.span("postprocess"):
        if dimensions is not None:
            vectors = vectors[:, :dimensions]
        if normalize:
            vectors = l2_normalize(vectors)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def check_dimensions(dimensions: Optional[int], engine: Engine, field: str = "dimensions") -> None:
    """raises InvalidInput (400) naming `field` unless 1 <= dimensions <= the model's dimension."""
    dimension = engine.model.dimension
    if dimensions is not None and not 1 <= dimensions <= dimension:
        raise InvalidInput(
            f"{field} must be between 1 and {dimension} for model {engine.name!r}; got {dimensions}",
            param=field,
        )


def embed_text(
    engines: Registry,
    budgets: RequestBudgets,
    *,
    model_name: Optional[str],
    texts: Optional[Sequence[str]] = None,
    token_ids: Optional[Sequence[Sequence[int]]] = None,
    normalize: bool = True,
    dimensions: Optional[int] = None,
    truncate: bool = True,
    direction: str = "right",
    prompt: PromptChoice = PromptChoice(),
    param: str = "input",
    prefer_first: bool = False,
    dimensions_field: str = "dimensions",
    chunked: Optional[bool] = None,
) -> Embeddings:
    """Embed `texts` (or pre-tokenised `token_ids`) with the named text model.

    Returns Embeddings with (n, dim) float32 vectors in input order. raises ModelNotFound (404),
    InvalidInput (400: bad dimensions, prompt or ids), LimitExceeded (413: more than
    MAX_CLIENT_BATCH_SIZE inputs, a text over MAX_INPUT_CHARS or texts over MAX_REQUEST_CHARS,
    the prompt or instruction counted with every text; more inputs than the model's queue
    holds, MAX_QUEUE_SIZE), Unprocessable (422: over-long input with truncate false).
    """
    started = time.perf_counter()
    count = len(texts) if texts is not None else len(token_ids or ())
    check_batch_size(count, budgets.max_client_batch_size, param)
    engine = engines.get(resolve(engines, model_name), Capability.EMBED_TEXT, prefer_first=prefer_first)
    check_dimensions(dimensions, engine, dimensions_field)
    chunked = budgets.chunked_embeddings if chunked is None else chunked
    if texts is not None:
        resolved = engine.text_encoder.prompt_for(prompt)
        check_text_chars([len(resolved.prefix) + len(text) for text in texts], budgets, param, resolved.note)
        if chunked:
            encoded = embed_windows(engine, texts, resolved, budgets, param)
        else:
            encoded = engine.embed_texts(texts, resolved, truncate, direction, param=param)
    else:
        encoded = engine.embed_token_ids(token_ids or [], truncate, direction, param=param)
    vectors = postprocess(encoded.vectors, dimensions, normalize)
    note_usage(engine.name, len(vectors), encoded.tokens)
    return Embeddings(vectors, engine, encoded.tokens, time.perf_counter() - started)


def embed_windows(engine: Engine, texts: Sequence[str], prompt, budgets: RequestBudgets, param: str):
    """Each text as overlapping windows of the model's window (a quarter shared,
    `TextEncoder.prepare_chunks`), each window's pooled vector weighted by its tokens and averaged
    into the text's vector (vLLM's chunked processing); a text within the window is one window,
    the same as without chunking. raises LimitExceeded (413) past MAX_EMBED_CHUNKS windows, before
    any forward pass. Returns an Encoded with one (not normalised) row per text; `tokens` counts
    every window's tokens."""

    def check(count: int) -> None:
        if count > budgets.max_embed_chunks:
            raise LimitExceeded(f"{param} make {count} windows; at most {budgets.max_embed_chunks} per request "
                                "(MAX_EMBED_CHUNKS)", param=param)

    # One window past the budget per text at most is tokenised: enough to know it is over.
    chunks = engine.prepare_chunks(texts, prompt, budgets.max_embed_chunks + 1, check)
    encoded = engine.embed_prepared(chunks)
    weights = np.array([len(item) for item in chunks.items], dtype=np.float64)
    sums = np.zeros((len(texts), encoded.vectors.shape[1]))
    np.add.at(sums, np.asarray(chunks.owners), encoded.vectors.astype(np.float64) * weights[:, None])
    totals = np.bincount(np.asarray(chunks.owners), weights=weights, minlength=len(texts))
    encoded.vectors = (sums / np.maximum(totals, 1.0)[:, None]).astype(np.float32)
    return encoded


def embed_images(
    engines: Registry,
    budgets: RequestBudgets,
    loader: ImageLoader,
    *,
    model_name: Optional[str],
    sources: Sequence[Union[str, bytes]],
    normalize: bool = True,
    dimensions: Optional[int] = None,
    param: str = "images",
    dimensions_field: str = "dimensions",
) -> Embeddings:
    """Embed images (data URIs, base64, URLs, allowed local paths or uploaded bytes) with the named
    multimodal model's image tower.

    Returns Embeddings with (n, dim) float32 vectors in input order (`tokens` is 0). raises
    ModelNotFound (404); InvalidInput (400) when no multimodal model is served; the image errors of
    `ImageLoader.load` (400/403/415/422, 413 past a per-image or per-request image budget,
    message prefixed with the image's index). Images are shrunk toward the model's image input
    size as they decode.
    """
    started = time.perf_counter()
    check_batch_size(len(sources), budgets.max_client_batch_size, param)
    engine = engines.get(resolve(engines, model_name), Capability.EMBED_IMAGES, param=param)
    check_dimensions(dimensions, engine, dimensions_field)
    with timed("tokenization"):  # decoding images is their tokenisation
        images = loader.load(sources, param=param, size=engine.image_encoder.image_input_size)
    # The processor's tensors (float32 at the model's input size, however small the image) exist
    # for 64 images at a time, not for all of a request's (up to MAX_CLIENT_BATCH_SIZE).
    chunks = [images[start:start + 64] for start in range(0, len(images), 64)] or [images]
    vectors = np.concatenate([engine.embed_images(chunk).vectors for chunk in chunks])
    note_usage(engine.name, len(images), 0)
    return Embeddings(postprocess(vectors, dimensions, normalize), engine, 0, time.perf_counter() - started)


def similarity(
    engines: Registry,
    budgets: RequestBudgets,
    *,
    model_name: Optional[str],
    source: str,
    sentences: Sequence[str],
    truncate: bool = True,
    direction: str = "right",
    prompt: PromptChoice = PromptChoice(),
) -> np.ndarray:
    """(len(sentences),) float32: the cosine similarity of each sentence to `source` under the
    named text model (both L2-normalised, then their dot product), as TEI's `/similarity` and
    `sentence_transformers.util.cos_sim`. The prompt applies to every text.

    raises what `embed_text` raises, naming `inputs.source_sentence` or `inputs.sentences`; the
    request's characters (MAX_REQUEST_CHARS) count the source and every sentence.
    """
    check_batch_size(len(sentences) + 1, budgets.max_client_batch_size, "inputs.sentences")
    engine = engines.get(resolve(engines, model_name), Capability.EMBED_TEXT)
    resolved = engine.text_encoder.prompt_for(prompt)
    prefix, seen = resolved.prefix, resolved.note
    check_text_chars([len(prefix) + len(source)], budgets, "inputs.source_sentence", seen, item="{param}")
    check_text_chars(
        [len(prefix) + len(text) for text in sentences], budgets, "inputs.sentences", seen,
        extra=len(prefix) + len(source), total_seen=f"{seen}, source sentence included" if seen else "source sentence included",
    )
    items = engine.prepare_texts([source], resolved, truncate, direction, "inputs.source_sentence")
    items += engine.prepare_texts(sentences, resolved, truncate, direction, "inputs.sentences")
    encoded = engine.encode(items)  # the source and the sentences in one queue trip
    note_usage(engine.name, len(items), encoded.tokens)
    vectors = l2_normalize(encoded.vectors)
    return vectors[1:] @ vectors[0]
