"""TEI's response bodies: `/similarity`, `/decode`, `/embed_all`, `/tokenize`, rerank lists and `POST /`."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import orjson
from pydantic import BaseModel, RootModel

from ...responses import VECTORS


#: `/similarity`: one cosine similarity per sentence.
SCORES = {"type": "array", "items": {"type": "number"}}


#: `/decode`: one string per list of ids.
TEXTS = {"type": "array", "items": {"type": "string"}}


#: `/embed_all`: per input, one vector per token.
TOKEN_VECTORS = {"type": "array", "items": VECTORS}


class TEIToken(BaseModel):
    """One token of `/tokenize`: `start`/`stop` are byte offsets into the UTF-8 text as the model
    sees it (null for special tokens), as TEI gives them."""

    id: int
    text: str
    special: bool
    start: Optional[int]
    stop: Optional[int]


class TEITokens(RootModel[list[list[TEIToken]]]):
    """`/tokenize`: the tokens of each input."""


class TEIRank(BaseModel):
    """One row of TEI's rerank answer; `text` only with `return_text`."""

    index: int
    score: float
    text: Optional[str] = None


class TEIRanks(RootModel[list[TEIRank]]):
    """TEI's rerank answer: `[{"index", "score", "text"?}]`, best first."""


class TEILabelScore(BaseModel):
    """One label of `/predict`: its score (a probability, or the logit with `raw_scores`)."""

    score: float
    label: str


class TEIRootResponse(RootModel[Union[list[list[float]], list[float], list[TEIRank], list[TEILabelScore],
                                      list[list[TEILabelScore]]]]):
    """`POST /`: as `/embed` (vectors), `/similarity` (scores), TEI's rerank or `/predict`, by the
    request's shape and model."""


class TEISparseValue(BaseModel):
    """One non-zero entry of a sparse vector: its token id (`index`) and weight (`value`)."""

    index: int
    value: float


class TEISparseVectors(RootModel[list[list[TEISparseValue]]]):
    """`/embed_sparse`: per input, its non-zero entries, ascending by index."""


def sparse_body(vectors: Sequence) -> bytes:
    """TEI's `/embed_sparse` answer, `[[{"index", "value"}]]`, serialised one vector at a time
    from the SparseVectors' numpy arrays (orjson's float formatting), without a Python object per
    entry for the whole answer at once."""
    parts = []
    for vector in vectors:
        if not len(vector):
            parts.append(b"[]")
            continue
        ids = orjson.dumps(vector.indices, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")
        values = orjson.dumps(vector.values, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")
        parts.append(b"[" + b",".join(b'{"index":%s,"value":%s}' % pair for pair in zip(ids, values)) + b"]")
    return b"[" + b",".join(parts) + b"]"
