"""Dialect-independent operations: what every embedding route does once its request is parsed.

Blueprints translate their dialect into these calls and the result back into their response
shape; validation that depends on configuration (batch size, model dimension) lives here so each
dialect gets it identically.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np

from .context import current_stats
from .errors import BadRequest, PayloadTooLarge
from .images import ImageLoader
from .models.base import ImageEncoder, PromptChoice, TextEncoder
from .models.multimodal import MultimodalModel
from .registry import Registry

#: Model kinds whose text side can embed text.
TEXT_KINDS = ("text", "multimodal")


@dataclass
class Embeddings:
    """`vectors` (n, dim) float32 (L2-normalised unless asked otherwise), the `model` used, the
    number of `tokens` fed (special tokens included) and the wall time in `seconds`."""

    vectors: np.ndarray
    model: TextEncoder
    tokens: int
    seconds: float


def _count_tokenization(since: float) -> None:
    stats = current_stats.get()
    if stats is not None:
        stats.tokenization += time.perf_counter() - since


def note_usage(model: str, items: int, tokens: int) -> None:
    """Record the request's model, inputs and tokens for the access log and metrics."""
    stats = current_stats.get()
    if stats is not None:
        stats.model, stats.items, stats.tokens = model, stats.items + items, stats.tokens + tokens


def check_batch_size(count: int, limit: int, param: str) -> None:
    """raises PayloadTooLarge (413) when a request carries more than `limit` inputs."""
    if count > limit:
        raise PayloadTooLarge(
            f"{param} has {count} items; at most {limit} per request (MAX_CLIENT_BATCH_SIZE)", param=param
        )


def check_input_chars(texts: Sequence[str], limit: int, param: str) -> None:
    """raises PayloadTooLarge (413) for a text longer than MAX_INPUT_CHARS characters, before any
    tokenising: a tokenizer's cost grows with the text, not with the model's window."""
    for index, text in enumerate(texts):
        if len(text) > limit:
            raise PayloadTooLarge(
                f"{param}[{index}] has {len(text)} characters; at most {limit} per input (MAX_INPUT_CHARS)", param=param
            )


def postprocess(vectors: np.ndarray, dimensions: Optional[int], normalize: bool) -> np.ndarray:
    """Matryoshka truncation to `dimensions`, then L2 normalisation (eps 1e-12, as
    `torch.nn.functional.normalize`). (n, dim) float32 -> (n, dimensions or dim) float32."""
    if dimensions is not None:
        vectors = vectors[:, :dimensions]
    if normalize:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.maximum(norms, 1e-12)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def check_dimensions(dimensions: Optional[int], model: TextEncoder) -> None:
    """raises BadRequest (400) unless 1 <= dimensions <= the model's dimension."""
    if dimensions is not None and not 1 <= dimensions <= model.dimension:
        raise BadRequest(
            f"dimensions must be between 1 and {model.dimension} for model {model.name!r}; got {dimensions}",
            param="dimensions",
        )


def embed_text(
    registry: Registry,
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
) -> Embeddings:
    """Embed `texts` (or pre-tokenised `token_ids`) with the named text model.

    Returns Embeddings with (n, dim) float32 vectors in input order. raises ModelNotFound (404),
    BadRequest (400: bad dimensions, prompt or ids), PayloadTooLarge (413: more than
    MAX_CLIENT_BATCH_SIZE inputs), Unprocessable (422: over-long input with truncate false).
    """
    started = time.perf_counter()
    count = len(texts) if texts is not None else len(token_ids or ())
    check_batch_size(count, registry.settings.max_client_batch_size, param)
    if texts is not None:
        check_input_chars(texts, registry.settings.max_input_chars, param)
    model = registry.get(model_name, TEXT_KINDS, "text embeddings", prefer_first=prefer_first)
    assert isinstance(model, TextEncoder)
    check_dimensions(dimensions, model)
    prepared = time.perf_counter()
    if texts is not None:
        items = model.prepare_texts(texts, prompt, truncate, direction, param=param)
    else:
        items = model.prepare_ids(token_ids or [], truncate, direction, param=param)
    _count_tokenization(prepared)
    pooled = registry.batchers[model.name].run(items)
    vectors = postprocess(pooled, dimensions, normalize)
    tokens = sum(len(item) for item in items)
    note_usage(model.name, len(items), tokens)
    return Embeddings(vectors, model, tokens, time.perf_counter() - started)


def embed_images(
    registry: Registry,
    loader: ImageLoader,
    *,
    model_name: Optional[str],
    sources: Sequence[Union[str, bytes]],
    normalize: bool = True,
    dimensions: Optional[int] = None,
    param: str = "images",
) -> Embeddings:
    """Embed images (data URIs, base64, URLs, allowed local paths or uploaded bytes) with the named
    multimodal model's image tower.

    Returns Embeddings with (n, dim) float32 vectors in input order (`tokens` is 0). raises
    ModelNotFound (404); BadRequest (400) when no multimodal model is served; the image errors of
    `ImageLoader.load` (400/403/413/415/422, message prefixed with the image's index).
    """
    started = time.perf_counter()
    check_batch_size(len(sources), registry.settings.max_client_batch_size, param)
    model = registry.get(model_name, ("multimodal",), "image embeddings", missing_param=param)
    assert isinstance(model, MultimodalModel) and isinstance(model, ImageEncoder)
    check_dimensions(dimensions, model)
    prepared = time.perf_counter()
    images = loader.load(sources, param=param)
    items = model.prepare_images(images)
    _count_tokenization(prepared)
    pooled = registry.batchers[model.name].run(items)
    note_usage(model.name, len(items), 0)
    return Embeddings(postprocess(pooled, dimensions, normalize), model, 0, time.perf_counter() - started)
