"""Pair scores, independent of the dialect (vLLM's `/score`): one text against many, or two lists
zipped, scored by the model's own kind of score:

- a reranker (cross-encoder, Qwen3-Reranker): its relevance probability, sigmoid of the log-odds
  (`CrossEncoder.predict`'s activation for one label);
- a multi-vector model: MaxSim of the first text (as a query) against the second (as a document);
- a text embedder: the cosine similarity of the two texts' vectors (L2-normalised, then their dot
  product), each distinct text embedded once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..domain.errors import InvalidInput
from ..inference.engine import Capability, Engine
from ..inference.registry import Registry
from ..models.prompts import PromptChoice
from .embed import check_batch_size, check_text_chars, l2_normalize, note_usage
from .rerank import choose_engine
from .retrieval import maxsim_scores
from .state import RequestBudgets


@dataclass
class PairScores:
    """`scores` (pairs,) float64 in pair order; the `model` (engine), `tokens` fed, `seconds`."""

    scores: np.ndarray
    model: Engine
    tokens: int
    seconds: float


def pairs_of(first: Sequence[str], second: Sequence[str], first_field: str) -> list[tuple[str, str]]:
    """One against many (`first` holds one text), many against one (`second` does), or two lists
    zipped (as long as each other); raises InvalidInput (400) naming `first_field` otherwise."""
    if len(first) == 1:
        return [(first[0], text) for text in second]
    if len(second) == 1:
        return [(text, second[0]) for text in first]
    if len(first) == len(second):
        return list(zip(first, second))
    raise InvalidInput(f"{first_field} must hold one text, or as many as the second list ({len(second)}); got {len(first)}",
                       param=first_field)


def score(
    engines: Registry, budgets: RequestBudgets, *, model_name: Optional[str], first: Sequence[str], second: Sequence[str],
    fields: tuple[str, str] = ("text_1", "text_2"), truncate: bool = True,
) -> PairScores:
    """Score each pair (module docstring). raises ModelNotFound (404), InvalidInput (400: list
    lengths, a model that cannot score), LimitExceeded (413: more than MAX_CLIENT_BATCH_SIZE
    pairs, texts over MAX_INPUT_CHARS or MAX_REQUEST_CHARS, MAX_QUEUE_SIZE), Unprocessable (422:
    over-long with `truncate` false)."""
    started = time.perf_counter()
    check_batch_size(len(second), budgets.max_client_batch_size, fields[1])
    pairs = pairs_of(first, second, fields[0])
    engine = choose_engine(engines, model_name)
    if engine.can(Capability.SCORE_PAIRS):  # a pair model sees the first text again with every second one
        check_text_chars([len(a) + len(b) for a, b in pairs], budgets, fields[1], "both texts of a pair counted")
    else:  # an embedding model sees each distinct text once
        check_text_chars([len(t) for t in dict.fromkeys(t for pair in pairs for t in pair)], budgets, fields[1])
    groups: dict[str, list[int]] = {}
    for index, (query, _) in enumerate(pairs):
        groups.setdefault(query, []).append(index)
    scores = np.zeros(len(pairs))
    tokens = 0
    if engine.can(Capability.SCORE_PAIRS):
        for query, rows in groups.items():
            result = engine.score_pairs(query, [pairs[i][1] for i in rows], None, truncate, None)
            scores[rows] = 1.0 / (1.0 + np.exp(-result.raw))
            tokens += result.tokens
    elif engine.can(Capability.MULTI_VECTOR):
        plain = (PromptChoice(), PromptChoice())
        for query, rows in groups.items():
            values, _, fed = maxsim_scores(engine, query, [pairs[i][1] for i in rows], plain, truncate, "right")
            scores[rows] = values
            tokens += fed
    else:
        texts = list(dict.fromkeys(text for pair in pairs for text in pair))
        encoded = engine.embed_texts(texts, PromptChoice(), truncate, "right", param=fields[1])
        vectors = dict(zip(texts, l2_normalize(encoded.vectors.astype(np.float64))))
        scores[:] = [float(vectors[a] @ vectors[b]) for a, b in pairs]
        tokens = encoded.tokens
    note_usage(engine.name, len(pairs), tokens)
    return PairScores(scores, engine, tokens, time.perf_counter() - started)
