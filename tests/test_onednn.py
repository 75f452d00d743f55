"""float32 CPU linear layers through oneDNN (`ONEDNN_LINEAR`, acceleration.py): which layers
switch, that each switched layer computes `nn.functional.linear`, that every served family keeps
its recipe parity with the switch (the parity tests run with it on), and that the setting turns
it off."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import load_registry
from embedding_service import acceleration as onednn
from embedding_service.models.base import PromptChoice
from embedding_service.cpu_share import CpuShare
from embedding_service.acceleration import OneDnnLinear, bucket_rows, use_onednn_linear, warm_kernels
from embedding_service.settings import Settings

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
    assert CpuShare(slots=4, cores=16).thread_counts() == [4, 5, 8, 16]
    assert CpuShare(slots=3, cores=2).thread_counts() == [1, 2]
