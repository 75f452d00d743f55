"""bf16 on the CPU (precision.py): what DTYPE means on a CPU with and without native bf16, the
load-time self-check against float32 (its thresholds and its fallback), the check of every
capability (text, images, pairs), and parity with the reference recipe on the real MiniLM within
the stated tolerance."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from conftest import app_from, load_registry
from embedding_service.inference.cpu import precision
from embedding_service.inference.cpu.kernels import BucketedLinear, PackedBf16Linear
from embedding_service.models.families import load_model
from embedding_service.config.model_specs import ModelSpec
from embedding_service.inference.cpu.precision import (
    AUTOCAST_MIN_COSINE, WEIGHTS_MIN_COSINE, Precision, apply_precision, bf16_units, compare, sample_outputs,
)
from embedding_service.config.settings import Settings
from support.texts import TEXTS, cosine_rows


def load(reference: str):
    return load_model(ModelSpec(name=reference.rsplit("/", 1)[-1], reference=reference), "cpu", "float32")


@pytest.fixture(scope="module")
def reference_vectors(minilm_path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(minilm_path, device="cpu").encode(TEXTS, convert_to_numpy=True)


# ------------------------------------------------------------------ what DTYPE means here
def test_auto_is_float32_without_native_bf16_and_bf16_with_it(monkeypatch, minilm_path):
    monkeypatch.setattr(precision, "native_bf16", lambda: None)
    assert precision.resolve("auto", "cpu") == "float32"
    settings = Settings.from_mapping({"MODEL_NAME": minilm_path, "LOG_LEVEL": "WARNING"})
    model = load_registry(settings, warmup=False).first.model
    assert model.precision == "float32" and model.info()["precision"] == "float32"
    assert type(model.model.encoder.layer[0].output.dense) is not BucketedLinear

    monkeypatch.setattr(precision, "native_bf16", lambda: "AMX")
    assert precision.resolve("auto", "cpu") == "bfloat16"
    model = load_registry(settings, warmup=False).first.model
    assert model.precision == "bfloat16" and model.cpu_kernels == "bf16"
    assert model.model.encoder.layer[0].output.dense.weight.dtype == torch.float32  # autocast: float32 weights
    assert type(model.model.encoder.layer[0].output.dense) is PackedBf16Linear  # with a packed bf16 copy
    # explicit names are honoured whatever the CPU; CUDA keeps its own meaning (loading.py)
    assert precision.resolve("float32", "cpu") == "float32" and precision.resolve("auto", "cuda") == "auto"


def test_bf16_units_from_cpu_flags():
    assert bf16_units("fpu sse2 avx2 avx512f".split()) is None
    assert bf16_units("avx512f avx512_bf16 avx512_vnni".split()) == "AVX512-BF16"
    assert bf16_units("avx512_bf16 amx_tile amx_bf16".split()) == "AMX"


# ------------------------------------------------------------------ the self-check
def test_compare_honours_each_threshold():
    ref = {"texts": np.array([[1.0, 0.0], [0.0, 1.0]]), "pairs": np.array([[0.0], [2.0]])}
    got = {"texts": np.array([[1.0, 0.01], [0.0, 1.0]]), "pairs": np.array([[0.1], [2.0]])}
    cosine = 1 / np.sqrt(1 + 0.01**2)  # 0.99995
    error = 1 / (1 + np.exp(-0.1)) - 0.5  # 0.025
    loose = Precision("x", min_cosine=cosine - 1e-9, max_score_error=error + 1e-9)
    result = compare(ref, got, loose)
    assert result.passed and result.min_cosine == pytest.approx(cosine) and result.max_score_error == pytest.approx(error)
    assert not compare(ref, got, Precision("x", min_cosine=cosine + 1e-9, max_score_error=1.0)).passed
    assert not compare(ref, got, Precision("x", min_cosine=0.0, max_score_error=error - 1e-9)).passed
    zero = {"texts": np.array([[0.0, 0.0], [0.0, 1.0]]), "pairs": got["pairs"]}
    assert compare(ref, zero, loose).min_cosine == 0.0  # a zero vector fails, never NaN


def test_threshold_is_honoured_on_minilm(minilm_path):
    model = load(minilm_path)
    measured = compare(sample_outputs(model), _autocast_outputs(model), precision.PRECISIONS["bfloat16"]).min_cosine
    assert AUTOCAST_MIN_COSINE <= measured < 1.0
    just_below = Precision("bfloat16", autocast=True, min_cosine=measured - 1e-6)
    assert apply_precision(model, "bfloat16", "cpu", reload=_never, precision=just_below).precision == "bfloat16"
    other = load(minilm_path)
    just_above = Precision("bfloat16", autocast=True, min_cosine=measured + 1e-6)
    assert apply_precision(other, "bfloat16", "cpu", reload=_never, precision=just_above).precision == "float32"


def test_failed_self_check_serves_float32_and_says_why(minilm_path, caplog):
    model = load(minilm_path)
    float32 = sample_outputs(model)["texts"]
    impossible = Precision("bfloat16", autocast=True, min_cosine=1.5)
    with caplog.at_level(logging.WARNING, logger="embedding_service.inference.cpu.precision"):
        served = apply_precision(model, "bfloat16", "cpu", reload=_never, precision=impossible)
    assert served is model and served.precision == "float32" and "forward" not in vars(served)
    np.testing.assert_array_equal(sample_outputs(served)["texts"], float32)  # float32 again, exactly
    warning = next(r.getMessage() for r in caplog.records if "fails the self-check" in r.getMessage())
    assert warning.startswith(f"model {model.name}: bfloat16") and "smallest cosine" in warning and "float32" in warning

    reloaded = []

    def reload():
        reloaded.append(load(minilm_path))
        return reloaded[-1]

    weights = load(minilm_path)
    served = apply_precision(weights, "bfloat16-weights", "cpu", reload=reload,
                             precision=Precision("bfloat16-weights", bf16_weights=True, min_cosine=1.5))
    assert served is reloaded[0] and served.precision == "float32"  # bf16 weights are not turned back: reloaded
    assert {p.dtype for p in served.model.parameters()} == {torch.float32}


@pytest.mark.parametrize("kind", ["siglip2", "clip", "bert-ce", "qwen3-reranker", "ner"])
def test_every_capability_is_checked(kind, multimodal, rerankers, retrieval):
    path = {"siglip2": multimodal["siglip2"], "clip": multimodal["clip"], "bert-ce": rerankers["bert"],
            "qwen3-reranker": rerankers["qwen3"], "ner": retrieval["ner"]}[kind]
    model = load(path)
    outputs = sample_outputs(model)
    expected = {"siglip2": {"texts", "images"}, "clip": {"texts", "images"}, "bert-ce": {"pairs"},
                "qwen3-reranker": {"pairs"}, "ner": {"token labels"}}[kind]
    assert set(outputs) == expected
    served = apply_precision(model, "bfloat16", "cpu", reload=_never)
    assert served.precision in ("bfloat16", "float32")  # tiny random weights may fail the check: either way it serves
    again = sample_outputs(served)
    assert {name: rows.shape for name, rows in again.items()} == {name: rows.shape for name, rows in outputs.items()}
    assert all(np.isfinite(rows).all() for rows in again.values())


# ------------------------------------------------------------------ parity on the real MiniLM
@pytest.mark.parametrize("dtype, threshold", [("bfloat16", AUTOCAST_MIN_COSINE), ("bfloat16-weights", WEIGHTS_MIN_COSINE)])
def test_bf16_parity_with_the_reference_recipe(dtype, threshold, minilm_path, reference_vectors):
    """Through the whole app (batcher, row buckets): every parity text within the precision's
    stated tolerance of `SentenceTransformer.encode` in float32."""
    client = app_from({"MODEL_NAME": minilm_path, "DTYPE": dtype, "CPU_KERNELS": "auto"}).test_client()
    info = next(m for m in client.get("/info").get_json()["models"])
    assert info["precision"] == dtype and info["cpu_kernels"] == "bf16"
    resp = client.post("/v1/embeddings", json={"input": TEXTS})
    ours = np.array([row["embedding"] for row in resp.get_json()["data"]], dtype=np.float32)
    cosines = cosine_rows(ours, reference_vectors)
    assert cosines.min() >= threshold
    assert cosines.min() < 0.9999999  # bf16 really ran: not float32's result
    one = np.array(client.post("/v1/embeddings", json={"input": TEXTS[3]}).get_json()["data"][0]["embedding"])
    assert cosine_rows(one[None], reference_vectors[3:4])[0] >= threshold  # a batch of one, another row bucket


def _autocast_outputs(model):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return sample_outputs(model)


def _never():
    raise AssertionError("an autocast model is never reloaded")
