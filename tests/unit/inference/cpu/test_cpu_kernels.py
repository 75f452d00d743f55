"""CPU kernels (`CPU_KERNELS`, acceleration.py): which layers switch to oneDNN, that each switched
layer computes `nn.functional.linear`, that every served family keeps its recipe parity with the
switch (the parity tests run with it on), that a forced choice is honoured (and the deprecated
`ONEDNN_LINEAR` still works), that `auto` picks the faster library by measurement and says why,
and the row buckets of bf16 models."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from conftest import load_registry
from embedding_service.inference.cpu import kernels as onednn
from embedding_service.models.prompts import PromptChoice
from embedding_service.config.cpu_share import CpuShare
from embedding_service.inference.cpu.kernels import (
    BucketedLinear, OneDnnLinear, PackedBf16Linear, apply_cpu_kernels, bucket_rows, decide_kernels, packed_bf16_available,
    pick_faster, use_bucketed_linear, use_onednn_linear, warm_kernels,
)
from embedding_service.config.settings import Settings

needs_onednn = pytest.mark.skipif(not onednn.onednn_available(), reason="this torch build has no usable oneDNN")


def linear_layers(module: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]


@needs_onednn
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(7, 384), (3, 11, 384), "transposed"])
def test_switched_layer_computes_linear(bias, shape):
    torch.manual_seed(0)
    layer = torch.nn.Linear(384, 1536, bias=bias)
    inputs = torch.randn(384, 9).t() if shape == "transposed" else torch.randn(*shape)
    with torch.inference_mode():
        expected = torch.nn.functional.linear(inputs, layer.weight, layer.bias)
        assert use_onednn_linear(layer) == 1 and type(layer) is OneDnnLinear
        actual = layer(inputs)
    assert actual.shape == expected.shape
    assert torch.allclose(actual, expected, rtol=1e-5, atol=1e-5)
    assert set(layer.state_dict()) == ({"weight", "bias"} if bias else {"weight"})


@needs_onednn
def test_only_plain_float32_cpu_layers_switch():
    class Custom(torch.nn.Linear):
        pass

    model = torch.nn.Sequential(
        torch.nn.Linear(8, 8), torch.nn.Linear(8, 8).to(torch.bfloat16), Custom(8, 8), torch.nn.Linear(8, 4)
    )
    assert use_onednn_linear(model) == 2
    assert [type(m).__name__ for m in model] == ["OneDnnLinear", "Linear", "Custom", "OneDnnLinear"]


def test_unavailable_onednn_changes_nothing(monkeypatch):
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    onednn.onednn_available.cache_clear()
    try:
        model = torch.nn.Sequential(torch.nn.Linear(8, 8))
        assert use_onednn_linear(model) == 0 and type(model[0]) is torch.nn.Linear
    finally:
        onednn.onednn_available.cache_clear()


def _minilm(minilm_path: str, switch: str):
    settings = Settings.from_mapping({"MODEL_NAME": minilm_path, "LOG_LEVEL": "WARNING", "ONEDNN_LINEAR": switch})
    return load_registry(settings, warmup=False).first.model


@needs_onednn
def test_setting_switches_minilm_and_results_agree(minilm_path):
    on, off = _minilm(minilm_path, "true"), _minilm(minilm_path, "false")
    assert {type(m) for m in linear_layers(on.model)} == {OneDnnLinear}
    assert {type(m) for m in linear_layers(off.model)} == {torch.nn.Linear}
    texts = ["a cat sits on the mat", "the stock market fell sharply today", "机器学习", "x " * 300]
    with on.lock, off.lock:
        a = on.forward(on.prepare_texts(texts, PromptChoice(), True, "right"))
        b = off.forward(off.prepare_texts(texts, PromptChoice(), True, "right"))
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() >= 0.99999
    assert not np.array_equal(a, b), "both paths ran the same kernels: the switch did nothing"


@needs_onednn
def test_every_served_family_runs_through_onednn(app, mm_app, rr_app):
    """The apps the parity tests use: every model's linear layers are switched, so those tests
    check the oneDNN path against each family's reference recipe. (nn.MultiheadAttention's
    out_proj, in SigLIP's pooling head, is a Linear subclass whose forward is never called.)"""
    for served in (app, mm_app, rr_app):
        for engine in served.extensions["embedding_service"].engines.engines:
            model = engine.model
            kinds = [type(m) for m in linear_layers(model.model)]
            assert torch.nn.Linear not in kinds and OneDnnLinear in kinds, (model.name, set(kinds))


def test_row_buckets_are_few_and_waste_little():
    sizes = {bucket_rows(rows) for rows in range(1, 16385)}
    assert len({bucket_rows(rows) for rows in range(1, 2049)}) == 40 and len(sizes) == 64
    assert all(bucket_rows(rows) >= rows and bucket_rows(rows) % 16 == 0 for rows in range(1, 16385))
    assert max((bucket_rows(rows) - rows) / rows for rows in range(256, 16385)) <= 1 / 8
    assert all(bucket_rows(size) == size for size in sizes)  # a bucket is its own bucket


@needs_onednn
def test_warm_kernels_covers_each_shape_bucket_and_thread_count():
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Linear(32, 8), torch.nn.Linear(8, 32))
    use_onednn_linear(model)
    before = torch.get_num_threads()
    # two distinct shapes (the third layer repeats the first) x 40 sizes x 2 thread counts
    assert warm_kernels(model, [1, 2, 2]) == 2 * 40 * 2
    assert torch.get_num_threads() == before


def test_cpu_share_lists_every_thread_count_it_can_choose():
    assert CpuShare(slots=2, cores=2).thread_counts() == [1, 2]
    assert CpuShare(slots=4, cores=16).thread_counts() == [2, 3, 4, 5, 8, 16]  # up to 8 lanes busy (2 per slot)
    assert CpuShare(slots=3, cores=2).thread_counts() == [1, 2]


# ------------------------------------------------------------------ choosing the kernels
class FakeClock:
    """A timer that only moves when a fake kernel runs: each call costs what it is told."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def kernel(self, seconds: float):
        def run() -> None:
            self.now += seconds
        return run


@pytest.mark.parametrize("vendor", ["AuthenticAMD", "GenuineIntel", ""])
@pytest.mark.parametrize("mkl_cost, onednn_cost, expected", [
    (3.0, 1.0, "onednn"),    # oneDNN 3x faster (as on a quiet AMD EPYC): whatever the vendor
    (1.0, 1.15, "mkl"),      # MKL faster (as on an Intel Xeon): no vendor workaround where it loses
    (1.15, 1.0, "vendor"),   # oneDNN ahead by less than ONEDNN_WINS (start-up noise): the vendor decides
])
def test_auto_picks_the_faster_of_two_kernels(mkl_cost, onednn_cost, expected, vendor, monkeypatch):
    monkeypatch.setattr(onednn, "cpu_vendor", lambda: vendor)
    clock = FakeClock()
    choice, reason = decide_kernels(
        torch.nn.Linear(4, 4), timer=clock, candidates={"mkl": clock.kernel(mkl_cost), "onednn": clock.kernel(onednn_cost)}
    )
    if expected == "vendor":
        expected = "onednn" if vendor == "AuthenticAMD" else "mkl"
    assert choice == expected
    assert f"MKL {mkl_cost * 1e3:.2f} ms" in reason and f"oneDNN {onednn_cost * 1e3:.2f} ms" in reason


def test_measure_kernels_weights_each_shape_by_its_layers():
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 8), torch.nn.Linear(8, 32))
    clock, costs = FakeClock(), {}

    def fake_linear(x, weight, bias):  # cost: 1 per output column (8 or 32), MKL twice oneDNN's
        clock.now += 2.0 * weight.shape[0]

    def fake_onednn(x, weight, bias, *rest):
        clock.now += 1.0 * weight.shape[0]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.nn.functional, "linear", fake_linear)
        patch.setattr(torch.ops.mkldnn, "_linear_pointwise", fake_onednn)
        costs = onednn.measure_kernels(model, timer=clock)
    assert costs == {"mkl": 2 * (2 * 8) + 1 * (2 * 32), "onednn": 2 * 8 + 32}


def test_pick_faster_keeps_each_best_round_and_alternates():
    clock, calls = FakeClock(), []
    costs = {"a": iter([9.0, 5.0, 2.0, 7.0] + [7.0] * 10), "b": iter([9.0, 3.0, 4.0, 1.0] + [8.0] * 10)}

    def kernel(name):
        def run():
            calls.append(name)
            clock.now += next(costs[name])
        return run

    best = pick_faster({"a": kernel("a"), "b": kernel("b")}, rounds=3, timer=clock, budget=1e9)
    assert best == {"a": 2.0, "b": 1.0}  # the first (untimed) call of each is not counted
    assert calls == ["a", "b"] * 4


def _tiny_bert(tiny, kernels):
    settings = Settings.from_mapping({"MODEL_NAME": tiny["bert_cls"], "LOG_LEVEL": "WARNING", "CPU_KERNELS": kernels})
    return load_registry(settings, warmup=False).first.model


@needs_onednn
@pytest.mark.parametrize("variable, value, expected", [
    ("CPU_KERNELS", "mkl", "mkl"), ("CPU_KERNELS", "onednn", "onednn"),
    ("ONEDNN_LINEAR", "false", "mkl"), ("ONEDNN_LINEAR", "true", "onednn"),
])
def test_forced_choice_is_honoured(variable, value, expected, tiny, monkeypatch):
    monkeypatch.setattr(onednn, "decide_kernels", lambda *a, **k: pytest.fail("a forced choice is not measured"))
    settings = Settings.from_mapping({"MODEL_NAME": tiny["bert_cls"], "LOG_LEVEL": "WARNING", variable: value})
    assert settings.cpu_kernels == expected
    model = load_registry(settings, warmup=False).first.model
    assert model.cpu_kernels == expected and model.info()["cpu_kernels"] == expected
    kinds = {type(m) for m in linear_layers(model.model) if m.weight.dtype == torch.float32}
    assert kinds == ({OneDnnLinear} if expected == "onednn" else {torch.nn.Linear})


@needs_onednn
def test_auto_measures_the_model_and_logs_why(tiny, caplog):
    with caplog.at_level(logging.INFO, logger="embedding_service.inference.cpu.kernels"):
        model = _tiny_bert(tiny, "auto")
    line = next(r.getMessage() for r in caplog.records if "CPU_KERNELS=auto" in r.getMessage())
    assert model.cpu_kernels in ("mkl", "onednn")
    assert f"CPU float32 linear layers: {model.cpu_kernels} (CPU_KERNELS=auto: measured on this model's linear" in line
    assert "MKL" in line and "oneDNN" in line and model.name in line
    kinds = {type(m) for m in linear_layers(model.model)}
    assert kinds == ({OneDnnLinear} if model.cpu_kernels == "onednn" else {torch.nn.Linear})


def test_auto_without_float32_layers_keeps_mkl():
    assert decide_kernels(torch.nn.Sequential(torch.nn.Linear(4, 4).to(torch.bfloat16)))[0] == "mkl"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_bf16_models_get_bucketed_layers_with_the_same_results(dtype):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 96), torch.nn.Linear(96, 32)).to(dtype)
    inputs = torch.randn(3, 7, 64).to(dtype)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.float32):
        expected = model(inputs)
        assert apply_cpu_kernels(model, "bf16", [1], warm=True) == "bf16"
        assert packed_bf16_available()  # this torch build on x86: oneDNN packs bf16 weights
        assert [type(m) for m in model] == [PackedBf16Linear, PackedBf16Linear]
        actual = model(inputs)  # 21 rows padded to 32 inside each layer
    assert actual.shape == expected.shape == (3, 7, 32) and actual.dtype == torch.bfloat16
    assert torch.allclose(actual.float(), expected.float(), rtol=2e-2, atol=2e-2)


def test_packed_bf16_layer_computes_what_autocast_computes_and_keeps_its_parameters():
    """The packed product has autocast's operands (weights cast to bf16 once, not per pass): its
    output matches `F.linear` under bf16 autocast to bf16's rounding, for every bucket of rows,
    and the float32 parameters (state dict) are untouched."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(384, 1536)
    state = {name: tensor.clone() for name, tensor in layer.state_dict().items()}
    inputs = {rows: torch.randn(rows, 384) for rows in (1, 17, 300, 700)}
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        reference = {rows: torch.nn.functional.linear(x, layer.weight, layer.bias).float() for rows, x in inputs.items()}
    assert use_bucketed_linear(torch.nn.Sequential(layer)) == (1, 1) and type(layer) is PackedBf16Linear
    with torch.inference_mode():
        for rows, x in inputs.items():
            got = layer(x)  # no autocast needed: the layer casts its input
            assert got.dtype == torch.bfloat16 and got.shape == (rows, 1536)
            assert torch.allclose(got.float(), reference[rows], rtol=2e-2, atol=2e-2), rows
    assert all(torch.equal(layer.state_dict()[name], tensor) for name, tensor in state.items())
    assert layer.weight.dtype == torch.float32 and layer.packed_weight.dtype == torch.bfloat16


def test_tied_weights_are_not_packed():
    """A head sharing the embeddings' weight stays torch's bf16 product (BucketedLinear): a packed
    copy of it would be as large as the vocabulary."""
    embeddings, head, hidden = torch.nn.Embedding(50, 16), torch.nn.Linear(16, 50, bias=False), torch.nn.Linear(16, 16)
    head.weight = embeddings.weight
    model = torch.nn.ModuleDict({"embed": embeddings, "hidden": hidden, "head": head})
    assert use_bucketed_linear(model) == (2, 1)
    assert type(model["hidden"]) is PackedBf16Linear and type(model["head"]) is BucketedLinear
    assert use_bucketed_linear(torch.nn.Sequential(torch.nn.Linear(4, 4)), pack=False) == (1, 0)


def test_cpu_share_counts_busy_lanes_and_a_bulk_lane_counts_bulk_lanes_only():
    share = CpuShare(slots=2, cores=2)
    assert share.enter(0, 1) == 2  # a bulk pass alone: every core
    assert share.enter(1, 0) == 1  # a query beside it: its share of the busy lanes
    assert share.enter(0, 1) == 2  # the bulk lane keeps its cores: the query preempts it (niceness)
    assert share.enter(1, 1) == 1  # a second bulk pass: the bulk lanes split the cores
    assert share.enter(0, 0) == 1  # 4 lanes busy: at least 1 thread
    share.clear(0)
    share.clear(1)
    assert share.enter(1, 0) == 2
