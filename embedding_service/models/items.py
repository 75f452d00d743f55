"""What the models' `prepare_*` methods make and `forward` consumes: one prepared input each
(token ids, a preprocessed image, a (query, document) pair), and padding a batch of token rows.
numpy only: prepared items are made on request threads (no torch there)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np


@dataclass
class TokenIds:
    """One tokenised input: `ids` exactly as fed to the model (special tokens included)."""

    ids: list[int]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class MaskedIds(TokenIds):
    """Token ids with their own attention mask and output mask (ColBERT): `attention[i]` 0 for a
    token that others do not attend to (query expansion), `keep[i]` False for a token whose vector
    is left out of the output (document skiplist)."""

    attention: list[int] = field(default_factory=list)
    keep: list[bool] = field(default_factory=list)


@dataclass
class SparseVector:
    """Lexical weights of one input: `indices` (n,) int64 token ids, ascending, and `values` (n,)
    float32 weights, each > 0."""

    indices: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)


def sparse_from_dense(row: np.ndarray) -> SparseVector:
    """The non-zero entries of a (vocabulary,) weight row."""
    indices = np.flatnonzero(row > 0)
    return SparseVector(indices.astype(np.int64), row[indices].astype(np.float32))


def max_per_id(ids: Sequence[int], weights: np.ndarray, dropped: frozenset = frozenset()) -> SparseVector:
    """Per token id its largest weight over the input's tokens, ids in `dropped` and weights <= 0
    left out (FlagEmbedding's `_process_token_weights`)."""
    best: dict[int, float] = {}
    for token, weight in zip(ids, weights.tolist()):
        if weight > 0 and token not in dropped and weight > best.get(token, 0.0):
            best[token] = weight
    order = sorted(best)
    return SparseVector(np.asarray(order, dtype=np.int64), np.asarray([best[t] for t in order], dtype=np.float32))


@dataclass
class ImageItem:
    """One preprocessed image: the processor's arrays for it (numpy, batch dimension removed:
    tensors are made on the compute thread, compute.py) and its number of patches, which counts
    as its length for batching."""

    tensors: dict
    patches: int

    def __len__(self) -> int:
        return self.patches


@dataclass
class PairItem:
    """One tokenised (query, document) pair or pair chunk: `ids` as fed, segment `type_ids` for
    models that use them, and `owner`, the index of the document it scores."""

    ids: list[int]
    owner: int
    type_ids: Optional[list[int]] = None

    def __len__(self) -> int:
        return len(self.ids)


def pad_batch(
    rows: Sequence[Sequence[int]], pad_id: int, left: bool, length: Optional[int] = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pad token rows to `length` (default: the longest) on the left or the right.

    Returns (ids, mask), both (len(rows), length) int64; mask is 1 on real tokens.
    """
    width = length or max(len(row) for row in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for index, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[index, span] = row
        mask[index, span] = 1
    return ids, mask
