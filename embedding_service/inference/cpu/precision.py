"""Numeric precision of the served models on the CPU: float32, bf16 mixed precision or bf16
weights, chosen per machine and checked against float32 at load.

DTYPE (or a model's `dtype` option) names it; on the CPU:

- `float32`: the reference recipes' precision (weights, activations and products in float32).
- `bfloat16`: mixed precision in the sense of `torch.autocast`: the weights stay float32 and
  the forward pass runs under `torch.autocast("cpu", dtype=torch.bfloat16)`, which casts the
  inputs of every matrix product (linear layers, attention) to bf16, for the CPU's bf16 units
  (AMX tiles or AVX512-BF16 dot products), and keeps its list of precision-sensitive ops in
  float32. The vectors stay within AUTOCAST_MIN_COSINE of float32. On the CPU the linear layers
  take the bf16 copy of their weights that autocast would make on every pass, made once at load
  (linear.py); the self-check runs after that is in place.
- `bfloat16-weights`: the weights themselves in bfloat16, every operation in bf16: the fastest
  and least exact (WEIGHTS_MIN_COSINE); what Infinity's and TEI's `--dtype bfloat16` do.
- `auto`: `bfloat16` where the CPU has native bf16 (`native_bf16`: AMX or AVX512-BF16), else
  `float32`. Where bf16 is only emulated it is slower than float32, so `auto` never picks it there.
- `float16`: float16 weights, as asked (slow on CPUs; not self-checked).

Why `bfloat16` means autocast (CONCURRENCY_ANALYSIS.md, quality table): over a fixed text set,
MiniLM's vectors under autocast stay at cosine >= 0.9999 to float32 (the precision a recipe's
parity needs), while bf16 weights fall to about 0.996 for a further gain in speed.

Self-check: before a model serves in bf16, `check` runs a fixed sample through it in float32 and
in the chosen precision, once per capability the model has (CHECK_TEXTS through its text
encoder, CHECK_IMAGES through its image encoder, CHECK_PAIRS through its reranker), and compares:
the smallest cosine between float32 and bf16 vectors must reach the precision's `min_cosine`,
the largest difference in relevance (sigmoid of the log-odds, 0..1) its `max_score_error`.
Below that the model is served in float32 and a warning says why. On CUDA, DTYPE chooses the
weights' dtype as loaded (models/loading.py) and nothing here applies.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import torch

from ...models.interfaces import (
    Classifier, ImageEncoder, Model, MultiVectorEncoder, Reranker, SparseEncoder, TokenClassifier,
)
from ...models.prompts import PromptChoice
from ...models.text_encoder import TextEncoder

log = logging.getLogger("embedding_service.inference.cpu.precision")

#: Smallest cosine to float32 accepted under `bfloat16` (autocast), over the self-check's
#: sample: the vectors must be interchangeable with the reference recipe's for search.
AUTOCAST_MIN_COSINE = 0.9999
#: Smallest cosine to float32 accepted under `bfloat16-weights` (bf16 weights measured about
#: 0.996 on MiniLM: retrieval-grade, not parity).
WEIGHTS_MIN_COSINE = 0.99
#: Largest difference in relevance (0..1) from float32 accepted for a reranker, per precision.
AUTOCAST_MAX_SCORE_ERROR = 0.01
WEIGHTS_MAX_SCORE_ERROR = 0.05

#: The self-check's fixed sample: varied length, script and content.
CHECK_TEXTS = (
    "a cat sits on the mat",
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "机器学习是人工智能的一个分支",
    "Москва — столица России",
    "def area(r): return 3.14159 * r ** 2",
    "Quarterly revenue rose 12% while operating costs fell, lifting margins to a record.",
    "😀 emoji and mixed 中文 text",
    "Photosynthesis converts light energy into chemical energy stored in glucose. " * 6,
)
CHECK_QUERY = "How do plants make energy from sunlight?"
CHECK_PAIRS = (
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The stock market fell sharply on Tuesday.",
    "Chlorophyll absorbs mostly blue and red light.",
    "A recipe for lemon cake with three eggs.",
)


@dataclass(frozen=True)
class Precision:
    """One DTYPE on the CPU: `autocast` (bf16 products over float32 weights) or `bf16_weights`,
    and the self-check's thresholds: `min_cosine` for embeddings, `max_score_error` (relevance,
    0..1) for reranker scores."""

    name: str
    autocast: bool = False
    bf16_weights: bool = False
    min_cosine: float = 1.0
    max_score_error: float = 0.0


PRECISIONS = {
    "bfloat16": Precision("bfloat16", autocast=True, min_cosine=AUTOCAST_MIN_COSINE,
                          max_score_error=AUTOCAST_MAX_SCORE_ERROR),
    "bfloat16-weights": Precision("bfloat16-weights", bf16_weights=True, min_cosine=WEIGHTS_MIN_COSINE,
                                  max_score_error=WEIGHTS_MAX_SCORE_ERROR),
}


def native_bf16() -> Optional[str]:
    """The CPU's native bf16 arithmetic: "AMX" (AMX tiles), "AVX512-BF16", or None (emulated).
    From torch's CPU probes, else the flags in /proc/cpuinfo (`bf16_units`)."""
    try:
        if torch.cpu._is_amx_tile_supported():
            return "AMX"
        return "AVX512-BF16" if torch.cpu._is_avx512_bf16_supported() else None
    except AttributeError:  # a torch without the probes
        pass
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return bf16_units(next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), []))
    except OSError:
        return None


def bf16_units(flags: list[str]) -> Optional[str]:
    """"AMX", "AVX512-BF16" or None from a CPU's /proc/cpuinfo flags (`amx_bf16`, `avx512_bf16`)."""
    if "amx_bf16" in flags:
        return "AMX"
    return "AVX512-BF16" if "avx512_bf16" in flags else None


def resolve(requested: str, device: str) -> str:
    """The precision DTYPE `requested` means for a model on `device`: `auto` on the CPU is
    `bfloat16` with native bf16, else `float32`; elsewhere the name as given (see loading.py)."""
    if requested == "auto" and device == "cpu":
        return "bfloat16" if native_bf16() else "float32"
    return requested


@dataclass
class CheckResult:
    """The self-check's outcome: `passed`, the smallest cosine and the largest relevance error
    measured (None when the model has no such output) and `detail`, in words."""

    passed: bool
    min_cosine: Optional[float]
    max_score_error: Optional[float]
    detail: str


def check_images() -> list:
    """Four fixed 64 x 64 RGB images: a gradient, a checkerboard, seeded noise and a disc."""
    from PIL import Image, ImageDraw

    ramp = np.linspace(0, 255, 64, dtype=np.uint8)
    gradient = np.stack([np.tile(ramp, (64, 1)), np.tile(ramp[:, None], (1, 64)), np.full((64, 64), 96, np.uint8)], -1)
    board = ((np.indices((64, 64)).sum(0) // 8) % 2 * 255).astype(np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    disc = Image.new("RGB", (64, 64), (20, 40, 160))
    ImageDraw.Draw(disc).ellipse((12, 12, 52, 52), fill=(240, 200, 30))
    return [Image.fromarray(gradient), Image.fromarray(np.stack([board] * 3, -1)), Image.fromarray(noise), disc]


def sample_outputs(model: Model) -> dict[str, np.ndarray]:
    """The model's outputs on the fixed sample, one entry per capability: "texts" and "images"
    (n, dimension) float32 vectors, "pairs" (n, 1) log-odds. Runs under the model's lock."""
    runs: dict[str, Callable[[], np.ndarray]] = {}
    if isinstance(model, TextEncoder) and model.serves_dense:
        runs["texts"] = lambda: model.forward(model.prepare_texts(list(CHECK_TEXTS), PromptChoice(), True, "right"))
    if isinstance(model, SparseEncoder):
        runs["sparse vectors"] = lambda: _dense_rows(model)
    if isinstance(model, MultiVectorEncoder):
        runs["token vectors"] = lambda: np.concatenate(model.token_vectors(
            model.prepare_multi_vector(list(CHECK_TEXTS), PromptChoice(), True, "right", is_query=False)))
    if isinstance(model, ImageEncoder):
        runs["images"] = lambda: model.forward(model.prepare_images(check_images()))
    if isinstance(model, Reranker):
        runs["pairs"] = lambda: model.forward(model.prepare_pairs(CHECK_QUERY, list(CHECK_PAIRS), None, True, None))
    if isinstance(model, Classifier):
        runs["labels"] = lambda: model.forward(model.prepare_inputs(list(CHECK_TEXTS), True, "right"))
    if isinstance(model, TokenClassifier):
        runs["token labels"] = lambda: np.concatenate(model.token_logits(model.prepare_inputs(list(CHECK_TEXTS), True, "right")))
    with model.lock:
        return {name: np.asarray(run(), dtype=np.float64) for name, run in runs.items()}


def _dense_rows(model: Any) -> np.ndarray:
    """The model's lexical weights on CHECK_TEXTS as (texts, vocabulary) rows."""
    vectors = model.lexical_weights(model.prepare_texts(list(CHECK_TEXTS), PromptChoice(), True, "right"))
    rows = np.zeros((len(vectors), model.sparse_dimension), dtype=np.float32)
    for row, vector in zip(rows, vectors):
        row[vector.indices] = vector.values
    return rows


def compare(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray], precision: Precision) -> CheckResult:
    """Check `candidate` outputs against float32 `reference` outputs under `precision`'s
    thresholds (see the module doc). A zero or non-finite vector counts as cosine 0."""
    cosines, errors, parts = [], [], []
    for name, ref in reference.items():
        got = candidate[name]
        if name in ("pairs", "labels", "token labels"):  # probabilities: of relevance, of each label (sigmoid: the stricter of the two)
            error = float(np.max(np.abs(1 / (1 + np.exp(-got)) - 1 / (1 + np.exp(-ref)))))
            error = error if np.isfinite(error) else 1.0
            errors.append(error)
            parts.append(f"{len(ref)} {name}: largest probability error {error:.5f} (at most {precision.max_score_error})")
        else:
            norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1)
            rows = np.where(norms > 0, (ref * got).sum(axis=1) / np.maximum(norms, 1e-30), 0.0)
            cosine = float(np.nan_to_num(rows, nan=0.0).min())
            cosines.append(cosine)
            parts.append(f"{len(ref)} {name}: smallest cosine {cosine:.6f} (at least {precision.min_cosine})")
    min_cosine = min(cosines) if cosines else None
    max_error = max(errors) if errors else None
    passed = (min_cosine is None or min_cosine >= precision.min_cosine) and (
        max_error is None or max_error <= precision.max_score_error
    )
    return CheckResult(passed, min_cosine, max_error, "; ".join(parts) or "nothing to compare")


def _autocast(forward: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(forward)
    def run(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return forward(*args, **kwargs)

    run.autocast = True  # type: ignore[attr-defined]
    return run


def _switch(model: Model, precision: Precision) -> None:
    if precision.autocast:
        for name in ("forward", *model.batched_outputs):
            setattr(model, name, _autocast(getattr(model, name)))
    else:
        model.model.to(torch.bfloat16)
        model.dtype = torch.bfloat16


def apply_precision(
    model: Model, requested: str, device: str, *, reload: Callable[[], Model],
    precision: Optional[Precision] = None, kernels: Optional[Callable[[Model], None]] = None,
) -> Model:
    """Give a freshly loaded (float32-weight, on the CPU) model the precision `requested` (a
    DTYPE value) means here (`resolve`), after the self-check; returns the model to serve (a
    float32 model from `reload` when the check fails, unless it failed under autocast with no
    `kernels` applied, which is simply undone) with `model.precision` set to the precision it
    serves in. `kernels(model)`, when given, installs the bf16 kernels (acceleration.py) after the
    switch and before the check, so the check measures what will serve. `precision` overrides the
    thresholds (tests). Off the CPU the model is returned as loaded. Logged: the choice, the
    reason and the check's figures."""
    name = resolve(requested, device)
    if device != "cpu" or name not in PRECISIONS:
        model.precision = name if device == "cpu" else str(model.dtype).replace("torch.", "")
        if device == "cpu" and requested == "auto":
            log.info("model %s: float32 (DTYPE=auto: this CPU has no native bf16, AMX or AVX512-BF16)", model.name)
        return model
    precision = precision or PRECISIONS[name]
    hardware = native_bf16()
    why = f"this CPU has {hardware}" if hardware else "no native bf16 on this CPU: emulated, slower than float32"
    if hardware is None:
        log.warning("model %s: DTYPE=%s asked for, but this CPU has no native bf16 (AMX or AVX512-BF16)", model.name, name)
    reference = sample_outputs(model)
    try:
        _switch(model, precision)
        if kernels is not None:
            kernels(model)
        result = compare(reference, sample_outputs(model), precision)
    except Exception as exc:  # a family whose forward cannot run in bf16: served in float32
        result = CheckResult(False, None, None, f"its forward pass failed in bf16: {type(exc).__name__}: {exc}")
    if result.passed:
        model.precision = precision.name
        mode = "bf16 matrix products over float32 weights (autocast)" if precision.autocast else "bf16 weights"
        log.info("model %s: %s, %s (DTYPE=%s; %s); self-check against float32: %s",
                 model.name, precision.name, mode, requested, why, result.detail)
        return model
    log.warning("model %s: %s fails the self-check against float32 (%s); serving float32",
                model.name, precision.name, result.detail)
    if precision.autocast and kernels is None:
        for name in ("forward", *model.batched_outputs):
            vars(model).pop(name, None)  # the class's own methods again
    else:
        model = reload()
    model.precision = "float32"
    return model


def uses_bf16(model: Model) -> bool:
    """Whether `model` serves in bf16 (autocast or bf16 weights): its matrix products then run
    through torch's own bf16 kernels, and acceleration.py leaves its linear layers alone."""
    return model.precision in PRECISIONS
