"""vLLM's classification and scoring routes: `POST /classify` (also `/v1/classify`, and Infinity's
request shape on the same path) and `POST /score` (also `/v1/score`).

- `/classify`: vLLM's `{"model"?, "input": str | [str]}` answers vLLM's list (`label`, the best
  label; `probs`, every label's probability in id2label order; `num_classes`); a request with
  Infinity's `raw_scores` field answers Infinity's shape (`data`: per input its labels and scores,
  best first; logits with `raw_scores: true`).
- `/score`: `text_1` (or `queries`) against `text_2` (or `documents`), one against many or two
  lists zipped, scored by the model's own score (operations/score.py).
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, StrictBool, StrictStr, model_validator

from ....operations.classify import classify
from ....operations.score import score
from ...budgets import ITEMS, ONE_ITEM, BodyLimit, Budget
from ...json_io import budgets, engines, json_body, json_response
from ...routing import EMBED_ERRORS, TEXT_LIMITS
from ...schemas import JsonInt, NonEmptyList, NonEmptyStr, Strict, TextInput, parse, strict_with
from .routes import bp


class ClassifyRequest(Strict):
    """vLLM's `{"model"?, "input": str | [str], "truncate_prompt_tokens"?, "user"?, "priority"?}`, or
    Infinity's `{"input": [str], "model"?, "raw_scores": bool}` (its shape is picked by `raw_scores`)."""

    input: TextInput
    model: Optional[StrictStr] = None
    raw_scores: Optional[StrictBool] = None
    truncate_prompt_tokens: Optional[Literal[-1]] = None
    user: Optional[StrictStr] = None
    priority: Optional[JsonInt] = None


class ClassifyItem(BaseModel):
    index: int
    label: str
    probs: list[float]
    num_classes: int


class LabelScore(BaseModel):
    label: str
    score: float


class ClassifyResponse(BaseModel):
    """vLLM's answer (`object: "list"`, `data` of ClassifyItem) or Infinity's (`object: "classify"`,
    `data`: per input its labels and scores)."""

    id: str
    object: Literal["list", "classify"]
    created: int
    model: str
    data: Union[list[ClassifyItem], list[list[LabelScore]]]
    usage: dict


@bp.operation(
    "POST", "/classify", "/v1/classify", summary="vLLM (and Infinity) classify: label probabilities per input",
    request=ClassifyRequest, response=ClassifyResponse, errors=EMBED_ERRORS, limits=TEXT_LIMITS, models="classifier",
    budget=Budget(BodyLimit.TEXT, "text", {"input": ITEMS}, capability="classifier"),
)
def classify_route():
    """vLLM's or Infinity's classification answer, by the request's shape (module docstring)."""
    req = parse(ClassifyRequest, json_body())
    texts = [req.input] if isinstance(req.input, str) else list(req.input)
    infinity = req.raw_scores is not None
    result = classify(engines(), budgets(), model_name=req.model, inputs=texts, raw_scores=bool(req.raw_scores), param="input")
    usage = {"prompt_tokens": result.tokens, "total_tokens": result.tokens}
    if infinity:
        return json_response({"id": f"infinity-{uuid.uuid4()}", "object": "classify", "created": int(time.time()),
                              "model": result.model.name, "data": [result.ranked(row) for row in range(len(texts))],
                              "usage": usage})
    data = [{"index": row, "label": result.labels[int(result.scores[row].argmax())], "probs": result.scores[row].tolist(),
             "num_classes": len(result.labels)} for row in range(len(texts))]
    return json_response({"id": f"classify-{uuid.uuid4().hex}", "object": "list", "created": int(time.time()),
                          "model": result.model.name, "data": data,
                          "usage": {**usage, "completion_tokens": 0, "prompt_tokens_details": None}})


class ScoreRequest(Strict):
    """vLLM's `{"model"?, "text_1": str | [str], "text_2": str | [str]}` (or `queries` and
    `documents`), plus `truncate_prompt_tokens` (-1), `user`, `priority`."""

    model_config = strict_with({"oneOf": [
        {"required": ["text_1", "text_2"], "properties": {
            "text_1": {"not": {"type": "null"}}, "text_2": {"not": {"type": "null"}},
            "queries": {"type": "null"}, "documents": {"type": "null"}}},
        {"required": ["queries", "documents"], "properties": {
            "queries": {"not": {"type": "null"}}, "documents": {"not": {"type": "null"}},
            "text_1": {"type": "null"}, "text_2": {"type": "null"}}},
    ]})

    model: Optional[StrictStr] = None
    text_1: Optional[Union[NonEmptyStr, NonEmptyList]] = None
    text_2: Optional[Union[NonEmptyStr, NonEmptyList]] = None
    queries: Optional[Union[NonEmptyStr, NonEmptyList]] = None
    documents: Optional[Union[NonEmptyStr, NonEmptyList]] = None
    truncate_prompt_tokens: Optional[Literal[-1]] = None
    user: Optional[StrictStr] = None
    priority: Optional[JsonInt] = None

    @model_validator(mode="after")
    def _one_form(self) -> "ScoreRequest":
        vllm, named = (self.text_1, self.text_2), (self.queries, self.documents)
        if not ((all(v is not None for v in vllm) and all(v is None for v in named))
                or (all(v is not None for v in named) and all(v is None for v in vllm))):
            raise ValueError("send text_1 and text_2, or queries and documents")
        return self


class ScoreItem(BaseModel):
    index: int
    object: Literal["score"]
    score: float


class ScoreResponse(BaseModel):
    id: str
    object: Literal["list"]
    created: int
    model: str
    data: list[ScoreItem]
    usage: dict


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@bp.operation(
    "POST", "/score", "/v1/score", summary="vLLM score: one text against many, or two lists zipped",
    request=ScoreRequest, response=ScoreResponse, errors=EMBED_ERRORS, limits=TEXT_LIMITS, models="all",
    budget=Budget(BodyLimit.TEXT, "text", {"text_1": ONE_ITEM, "text_2": ITEMS}, extra_items=0),
)
def score_route():
    """`{"model"?, "text_1" | "queries", "text_2" | "documents"}` -> `{"id", "object": "list",
    "created", "model", "data": [{"index", "object": "score", "score"}], "usage"}`."""
    req = parse(ScoreRequest, json_body())
    named = req.queries is not None
    first, second = (req.queries, req.documents) if named else (req.text_1, req.text_2)
    fields = ("queries", "documents") if named else ("text_1", "text_2")
    result = score(engines(), budgets(), model_name=req.model, first=_listed(first), second=_listed(second), fields=fields)
    return json_response({
        "id": f"score-{uuid.uuid4().hex}", "object": "list", "created": int(time.time()), "model": result.model.name,
        "data": [{"index": i, "object": "score", "score": float(value)} for i, value in enumerate(result.scores)],
        "usage": {"prompt_tokens": result.tokens, "total_tokens": result.tokens, "completion_tokens": 0,
                  "prompt_tokens_details": None},
    })
