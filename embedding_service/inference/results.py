"""What the engines' operations return: pooled vectors (`Encoded`), prepared chunks (`Chunks`),
pair scores (`PairScores`), and the best score of each owner of several rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np


@dataclass
class Encoded:
    """`vectors` (n, dim) float32, pooled and not normalised, in input order; `tokens` fed
    (special tokens included); `owners[i]`, the input that row i came from (chunking only)."""

    vectors: np.ndarray
    tokens: int
    owners: Optional[list[int]] = None


@dataclass
class Chunks:
    """Prepared chunks of texts: `items` and, for each, `owners[i]`, the index of its text."""

    items: list
    owners: list[int]


@dataclass
class PairScores:
    """`raw` (documents,) float64 log-odds of relevance, each document's best chunk; `items`
    (pairs or pair chunks) scored; `tokens` fed."""

    raw: np.ndarray
    items: int
    tokens: int


def best_per_owner(values: np.ndarray, owners: Sequence[int], count: int) -> np.ndarray:
    """(count,) float64: the largest of `values` per owner index (-inf for an owner with none)."""
    best = np.full(count, -np.inf)
    np.maximum.at(best, np.asarray(owners, dtype=np.int64), values.astype(np.float64))
    return best
