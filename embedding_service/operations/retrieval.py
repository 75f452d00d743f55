"""Hybrid-retrieval operations, independent of the dialect: lexical weights (sparse vectors),
token vectors (multi-vector, ColBERT) and MaxSim.

- Sparse: SPLADE or BGE-M3's sparse head; one :class:`SparseVector` per text, as the model's
  reference recipe gives it (sentence-transformers' `SparseEncoder.encode`, FlagEmbedding's
  lexical weights), with each entry's token string on request (FlagEmbedding's
  `convert_id_to_token`: the id decoded alone).
- Multi-vector: one vector per token, (vectors, dim) float32, each L2-normalised unless asked
  otherwise and cut to `dimensions` first (then re-normalised) where asked.
- MaxSim: for each query vector its largest dot product with a document's vectors, summed
  (PyLate's `colbert_scores`) or averaged over the query's vectors (FlagEmbedding's
  `colbert_score`), as the model's family says.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..domain.errors import InvalidInput
from ..inference.engine import Capability, Engine
from ..inference.results import best_per_owner
from ..models.text_encoder import CHUNK_OVERLAP
from ..inference.registry import Registry
from ..models.prompts import PromptChoice
from .embed import check_batch_size, check_text_chars, l2_normalize, note_usage
from .model_names import resolve
from .state import RequestBudgets


@dataclass
class SparseEmbeddings:
    """`vectors`: one SparseVector per text (indices ascending, values > 0); `tokens`: each
    vector's token strings when asked for, else None; the `model` (engine), `tokens_fed` and
    the wall time in `seconds`."""

    vectors: list
    tokens: Optional[list[list[str]]]
    model: Engine
    tokens_fed: int
    seconds: float


@dataclass
class TokenVectors:
    """`vectors`: one (vectors, dim) float32 array per text; the `model` (engine), `tokens_fed`
    and the wall time in `seconds`."""

    vectors: list[np.ndarray]
    model: Engine
    tokens_fed: int
    seconds: float


def sparse_engine(engines: Registry, model_name: Optional[str]) -> Engine:
    """The named model, else the first that gives sparse embeddings. raises ModelNotFound (404),
    InvalidInput (400: it gives none, or none is served)."""
    return engines.get(resolve(engines, model_name), Capability.SPARSE)


def multi_vector_engine(engines: Registry, model_name: Optional[str]) -> Engine:
    """The named model, else the first that gives multi-vector embeddings (as :func:`sparse_engine`)."""
    return engines.get(resolve(engines, model_name), Capability.MULTI_VECTOR)


def embed_sparse(
    engines: Registry, budgets: RequestBudgets, *, model_name: Optional[str], texts: Sequence[str],
    prompt: PromptChoice = PromptChoice(), truncate: bool = True, direction: str = "right", param: str = "input",
    return_tokens: bool = False, token_ids: Optional[Sequence[Sequence[int]]] = None,
) -> SparseEmbeddings:
    """Lexical weights of `texts` with the named sparse model (module docstring). raises
    ModelNotFound (404), InvalidInput (400: no sparse output, a bad prompt), LimitExceeded (413:
    MAX_CLIENT_BATCH_SIZE, MAX_INPUT_CHARS, MAX_REQUEST_CHARS, MAX_QUEUE_SIZE), Unprocessable
    (422: over-long with `truncate` false). The entries' budget (MAX_SPARSE_ENTRIES) is checked at
    the HTTP edge, before this runs. `token_ids` instead of `texts`: pre-tokenised inputs, fed as
    given (documents, no prompt)."""
    started = time.perf_counter()
    check_batch_size(len(texts) if token_ids is None else len(token_ids), budgets.max_client_batch_size, param)
    engine = sparse_engine(engines, model_name)
    if token_ids is not None:  # pre-tokenised (TEI's token-id inputs), fed as given
        vectors, fed = engine.run_output(engine.text_encoder.prepare_ids(token_ids, truncate, direction, param=param),
                                         "lexical_weights")
    else:
        resolved = engine.text_encoder.prompt_for(prompt)
        check_text_chars([len(resolved.prefix) + len(text) for text in texts], budgets, param, resolved.note)
        is_query = prompt.input_type == "query" or prompt.prompt_name == "query"
        vectors, fed = engine.lexical_weights(texts, resolved, truncate, direction, param, is_query=is_query)
    strings = None
    if return_tokens:
        decode = engine.model.tokenizer.decode
        cache: dict[int, str] = {}
        strings = [[cache.setdefault(i, decode([i])) for i in vector.indices.tolist()] for vector in vectors]
    note_usage(engine.name, len(vectors), fed)
    return SparseEmbeddings(vectors, strings, engine, fed, time.perf_counter() - started)


def check_multi_vector_dimensions(dimensions: Optional[int], engine: Engine, field: str = "dimensions") -> None:
    """raises InvalidInput (400) naming `field` unless 1 <= dimensions <= the token vectors' size."""
    size = getattr(engine.model, "multi_vector_dimension", 0)
    if dimensions is not None and not 1 <= dimensions <= size:
        raise InvalidInput(f"{field} must be between 1 and {size} for the token vectors of model {engine.name!r}; "
                           f"got {dimensions}", param=field)


def embed_multi_vector(
    engines: Registry, budgets: RequestBudgets, *, model_name: Optional[str], texts: Sequence[str], is_query: bool = False,
    prompt: PromptChoice = PromptChoice(), truncate: bool = True, direction: str = "right", normalize: bool = True,
    dimensions: Optional[int] = None, param: str = "input",
) -> TokenVectors:
    """Token vectors of `texts` (queries or documents) with the named multi-vector model, cut to
    `dimensions` and L2-normalised per vector (module docstring). raises as :func:`embed_sparse`
    does, and InvalidInput (400) for bad `dimensions`; MAX_TOKEN_VECTOR_VALUES is checked at the
    HTTP edge."""
    started = time.perf_counter()
    check_batch_size(len(texts), budgets.max_client_batch_size, param)
    engine = multi_vector_engine(engines, model_name)
    check_multi_vector_dimensions(dimensions, engine)
    resolved = engine.text_encoder.prompt_for(prompt)
    check_text_chars([len(resolved.prefix) + len(text) for text in texts], budgets, param, resolved.note)
    rows, fed = engine.token_vectors(texts, resolved, truncate, direction, is_query, param)
    vectors = [finish_vectors(row, dimensions, normalize) for row in rows]
    note_usage(engine.name, len(vectors), fed)
    return TokenVectors(vectors, engine, fed, time.perf_counter() - started)


def finish_vectors(rows: np.ndarray, dimensions: Optional[int], normalize: bool) -> np.ndarray:
    """(vectors, dim) -> (vectors, dimensions or dim) float32, each row L2-normalised when asked."""
    if dimensions is not None:
        rows = rows[:, :dimensions]
    if normalize and len(rows):
        rows = l2_normalize(rows)
    return np.ascontiguousarray(rows, dtype=np.float32)


def maxsim(query: np.ndarray, document: np.ndarray, average: bool) -> float:
    """MaxSim of (q, dim) query vectors against (d, dim) document vectors: the sum over query
    vectors of their largest dot product with a document vector (PyLate's `colbert_scores`), or
    that sum over q (`average`: FlagEmbedding's `colbert_score`). float64 accumulation."""
    if not len(query) or not len(document):
        return 0.0
    best = (query.astype(np.float64) @ document.astype(np.float64).T).max(axis=1)
    return float(best.sum() / len(query) if average else best.sum())


def document_chunks(engine: Engine, texts: Sequence[str], max_chunks: int) -> tuple[list[str], list[int]]:
    """Each text as up to `max_chunks` overlapping windows of its own characters (CHUNK_OVERLAP of
    the window shared), cut at the tokenizer's offsets so that each window fits the model's
    window with its special and prefix tokens; with, for each chunk, the index of its text. Only
    the part of a text that `max_chunks` windows can hold is tokenised."""
    model = engine.text_encoder
    window = max(8, model.max_length - model.tokenize.specials - 1)
    inputs = model.tokenize.windows(list(texts), max_chunks * window, "right")
    encoded = model.tokenize(
        inputs, add_special_tokens=False, truncation=True, max_length=window, stride=int(window * CHUNK_OVERLAP),
        return_overflowing_tokens=True, return_offsets_mapping=True, return_attention_mask=False, return_token_type_ids=False,
    )
    chunks, owners, seen = [], [], {}
    for offsets, owner in zip(encoded["offset_mapping"], encoded["overflow_to_sample_mapping"]):
        seen[owner] = seen.get(owner, 0) + 1
        if seen[owner] <= max_chunks and offsets:
            chunks.append(inputs[owner][offsets[0][0]:offsets[-1][1]])
            owners.append(int(owner))
    chunked = set(owners)
    for index, text in enumerate(texts):  # a text without tokens of its own is scored as it is
        if index not in chunked:
            chunks.append(text)
            owners.append(index)
    return chunks, owners


def maxsim_scores(
    engine: Engine, query: str, documents: Sequence[str], prompts: Any, truncate: bool, direction: str,
    max_chunks: Optional[int] = None, check: Optional[Callable[[int], None]] = None,
) -> tuple[np.ndarray, int, int]:
    """(MaxSim of each document against `query`, items scored, tokens fed), the query as a query
    and the documents as documents, in one queue trip each; `prompts`: the (query, document)
    prompts. With `max_chunks`, a long document is scored by its best chunk
    (:func:`document_chunks`); `check` is called with the number of chunks before any is queued."""
    owners = list(range(len(documents)))
    texts = list(documents)
    if max_chunks and texts:
        texts, owners = document_chunks(engine, texts, max_chunks)
        if check is not None:
            check(len(texts))
    query_rows, query_fed = engine.token_vectors([query], prompts[0], True, "right", True, "query")
    doc_rows, doc_fed = engine.token_vectors(texts, prompts[1], truncate, direction, False, "documents") if texts else ([], 0)
    average = bool(getattr(engine.model, "maxsim_average", False))
    q = l2_normalize(query_rows[0])
    scores = np.array([maxsim(q, l2_normalize(rows) if len(rows) else rows, average) for rows in doc_rows], dtype=np.float64)
    return best_per_owner(scores, owners, len(documents)), len(texts), query_fed + doc_fed


def pooling_engine(engines: Registry, model_name: Optional[str]) -> Engine:
    """The model vLLM's `/pooling` uses: the one named, else the default text model, else the
    first multi-vector model, else the first classifier. raises ModelNotFound (404), InvalidInput (400: none served)."""
    if model_name:
        return engines.find(resolve(engines, model_name))
    for capability in (Capability.EMBED_TEXT, Capability.MULTI_VECTOR, Capability.CLASSIFY):
        if engines.has(capability):
            return engines.default(capability)
    return engines.default(Capability.EMBED_TEXT)
