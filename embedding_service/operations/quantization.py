"""Quantized embeddings (Cohere's `embedding_types`), each vector on its own: the result for a
vector never depends on what else is in the batch.

The input is L2-normalised float32, so every component lies in [-1, 1]; a fixed range is used
instead of ranges calibrated on the batch (sentence-transformers' `int8`/`uint8` calibrate on the
embeddings given, which makes a vector's codes depend on its neighbours):

- `float`: the float32 values.
- `int8`: `round(clip(x, -1, 1) * 127)`, in -127..127 (0 stays 0, so int8 dot products estimate
  127² × the cosine without bias).
- `uint8`: `int8 + 128`, in 1..255.
- `binary`: one bit per dimension, 1 where x > 0, packed 8 to a byte, big-endian within the byte
  (the first dimension is the byte's highest bit), the last byte padded with 0 bits, minus 128 as
  int8: exactly sentence-transformers' `quantize_embeddings(..., "binary")`.
- `ubinary`: the same bytes without the offset, 0..255 (`quantize_embeddings(..., "ubinary")`).
- `base64`: the float32 values, little-endian, base64-encoded (what Cohere's `base64` type holds).

Lengths: `float`, `int8`, `uint8` have the vector's dimension; `binary` and `ubinary` have
ceil(dimension / 8) bytes.
"""

from __future__ import annotations

import base64
from typing import Any, Sequence

import numpy as np

#: The embedding types, in the order a response lists them.
TYPES = ("float", "int8", "uint8", "binary", "ubinary", "base64")


def int8(vectors: np.ndarray) -> np.ndarray:
    """(n, d) float -> (n, d) int8: round(clip(x, -1, 1) * 127)."""
    return np.rint(np.clip(vectors, -1.0, 1.0) * 127.0).astype(np.int8)


def uint8(vectors: np.ndarray) -> np.ndarray:
    """(n, d) float -> (n, d) uint8: int8 + 128."""
    return (int8(vectors).astype(np.int16) + 128).astype(np.uint8)


def ubinary(vectors: np.ndarray) -> np.ndarray:
    """(n, d) float -> (n, ceil(d / 8)) uint8: the sign bits (x > 0), packed big-endian."""
    return np.packbits(vectors > 0, axis=-1)


def binary(vectors: np.ndarray) -> np.ndarray:
    """(n, d) float -> (n, ceil(d / 8)) int8: the `ubinary` bytes minus 128."""
    return (ubinary(vectors).astype(np.int16) - 128).astype(np.int8)


def base64_rows(vectors: np.ndarray) -> list[str]:
    """Each row's float32 bytes (little-endian), base64-encoded."""
    rows = np.ascontiguousarray(vectors, dtype="<f4")
    return [base64.b64encode(row.tobytes()).decode("ascii") for row in rows]


def quantize(vectors: np.ndarray, kind: str) -> Any:
    """`vectors` (n, d) float32, L2-normalised, as embedding type `kind` (one of TYPES): a numpy
    array of n rows, or for `base64` a list of n strings. raises ValueError for another kind."""
    if kind == "float":
        return np.asarray(vectors, dtype=np.float32)
    if kind == "base64":
        return base64_rows(vectors)
    convert = {"int8": int8, "uint8": uint8, "binary": binary, "ubinary": ubinary}.get(kind)
    if convert is None:
        raise ValueError(f"unknown embedding type {kind!r}; known: {', '.join(TYPES)}")
    return convert(np.asarray(vectors, dtype=np.float32))


def by_type(vectors: np.ndarray, kinds: Sequence[str]) -> dict[str, Any]:
    """{kind: quantize(vectors, kind)} for each distinct kind of `kinds`, in TYPES order."""
    wanted = set(kinds)
    return {kind: quantize(vectors, kind) for kind in TYPES if kind in wanted}
