"""Classification, independent of the dialect (TEI's `/predict`, vLLM's and Infinity's
`/classify`, vLLM's `/pooling` with `task: classify`): each input, a text or a (text, text) pair,
scored per label by a classifier model, as transformers' text-classification pipeline with
`top_k=None` scores it: softmax over the labels, or sigmoid per label for a multi-label model;
`raw_scores` keeps the logits. Token classification (vLLM's `/pooling` with `task:
token_classify`) scores every token of a text the same way: :func:`classify_tokens`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np

from ..inference.engine import Capability, Engine
from ..inference.registry import Registry
from ..observability.request_stats import timed
from .embed import check_batch_size, check_text_chars, note_usage
from .model_names import resolve
from .state import RequestBudgets

ClassifierInput = Union[str, tuple[str, str]]


@dataclass
class Classification:
    """`scores` (inputs, labels) float64: probabilities (or logits with `raw_scores`), labels in
    the model's id2label order (`labels`); the `model` (engine), `tokens` fed, `seconds`."""

    scores: np.ndarray
    labels: list[str]
    model: Engine
    tokens: int
    seconds: float

    def ranked(self, row: int) -> list[dict]:
        """`[{"label", "score"}]` of input `row`, best first (ties in label order), as the pipeline lists them."""
        order = sorted(range(len(self.labels)), key=lambda i: (-self.scores[row, i], i))
        return [{"label": self.labels[i], "score": float(self.scores[row, i])} for i in order]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by each row's maximum (the pipeline's arithmetic), float64."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def classifier_engine(engines: Registry, model_name: Optional[str]) -> Engine:
    """The named model, else the first classifier. raises ModelNotFound (404), InvalidInput (400:
    it does not classify, or no classifier is served)."""
    return engines.get(resolve(engines, model_name), Capability.CLASSIFY)


def classify(
    engines: Registry, budgets: RequestBudgets, *, model_name: Optional[str], inputs: Sequence[ClassifierInput],
    raw_scores: bool = False, truncate: bool = True, direction: str = "right", param: str = "inputs",
    function_to_apply: Optional[str] = None,
) -> Classification:
    """Score each input per label (module docstring); `function_to_apply` ("softmax", "sigmoid" or
    "none", the Inference API's parameter) overrides the model's own function. raises ModelNotFound (404), InvalidInput
    (400), LimitExceeded (413: MAX_CLIENT_BATCH_SIZE, MAX_INPUT_CHARS counting both texts of a
    pair, MAX_REQUEST_CHARS, MAX_QUEUE_SIZE), Unprocessable (422: over-long with `truncate` false)."""
    started = time.perf_counter()
    check_batch_size(len(inputs), budgets.max_client_batch_size, param)
    engine = classifier_engine(engines, model_name)
    model = engine.classifier
    check_text_chars([len(i) if isinstance(i, str) else len(i[0]) + len(i[1]) for i in inputs], budgets, param,
                     "both texts of a pair counted")
    with timed("tokenization"):
        items = model.prepare_inputs(list(inputs), truncate, direction, param=param)
    encoded = engine.encode(items)
    logits = encoded.vectors.astype(np.float64)
    function = "none" if raw_scores else function_to_apply or ("sigmoid" if model.multi_label else "softmax")
    if function == "none":
        scores = logits
    elif function == "sigmoid":
        scores = 1.0 / (1.0 + np.exp(-logits))
    else:
        scores = softmax(logits)
    note_usage(engine.name, len(items), encoded.tokens)
    return Classification(scores, list(model.labels), engine, encoded.tokens, time.perf_counter() - started)


@dataclass
class TokenClassification:
    """`scores`: one (tokens, labels) float64 array per text, a row per token fed (special tokens
    included): probabilities (softmax, or sigmoid per label for a multi-label model; logits with
    `raw_scores`), labels in id2label order (`labels`); the `model` (engine), `tokens` fed."""

    scores: list[np.ndarray]
    labels: list[str]
    model: Engine
    tokens: int


def classify_tokens(
    engines: Registry, budgets: RequestBudgets, *, model_name: Optional[str], texts: Sequence[str],
    raw_scores: bool = False, truncate: bool = True, direction: str = "right", param: str = "input",
) -> TokenClassification:
    """Score each token of each text per label (models/token_classifier.py: the recipe), with the
    named token classifier, else the first. raises ModelNotFound (404), InvalidInput (400: the model
    does not classify tokens, or none is served), LimitExceeded (413: MAX_CLIENT_BATCH_SIZE,
    MAX_INPUT_CHARS, MAX_REQUEST_CHARS, MAX_QUEUE_SIZE), Unprocessable (422: over-long with
    `truncate` false)."""
    check_batch_size(len(texts), budgets.max_client_batch_size, param)
    engine = engines.get(resolve(engines, model_name), Capability.TOKEN_CLASSIFY)
    check_text_chars([len(text) for text in texts], budgets, param)
    logits, tokens = engine.token_logits(list(texts), truncate, direction, param=param)
    model = engine.model
    scores = []
    for rows in logits:
        rows = rows.astype(np.float64)
        if raw_scores:
            scores.append(rows)
        elif getattr(model, "multi_label", False):
            scores.append(1.0 / (1.0 + np.exp(-rows)))
        else:
            scores.append(softmax(rows))
    note_usage(engine.name, len(texts), tokens)
    return TokenClassification(scores, list(model.labels), engine, tokens)
