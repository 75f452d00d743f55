"""Attention over short inputs in bf16 on the CPU (attention.py): the same result as transformers'
`sdpa_attention_forward` for every mask, causal rule and head grouping it handles, that function
itself for everything else, and every model family switched to it still serving within bf16's
tolerance of torch's fused kernel."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from embedding_service import attention
from embedding_service.attention import ATTENTION, SHORT_TOKENS, short_attention, use_short_attention
from embedding_service.models.families import load_model
from embedding_service.models.spec import ModelSpec
from embedding_service.precision import sample_outputs


class Heads(torch.nn.Module):
    """What the attention functions read of the calling module."""

    def __init__(self, is_causal: bool, groups: int = 1):
        super().__init__()
        self.is_causal = is_causal
        self.num_key_value_groups = groups
        self.eval()


def qkv(batch=3, heads=4, groups=1, q_tokens=9, kv_tokens=9, dim=16, dtype=torch.bfloat16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    make = lambda h, t: torch.randn(batch, h, t, dim, generator=generator).to(dtype)  # noqa: E731
    return make(heads, q_tokens), make(heads // groups, kv_tokens), make(heads // groups, kv_tokens)


def padding(batch=3, tokens=9, left=False):
    """Boolean (batch, 1, tokens, tokens) masks of a padded batch: item i has i padding tokens, at
    the end (right) or at the start (left)."""
    keep = torch.ones(batch, tokens, dtype=torch.bool)
    for row in range(1, batch):
        if left:
            keep[row, :row] = False
        else:
            keep[row, tokens - row:] = False
    return keep[:, None, None, :].expand(batch, 1, tokens, tokens)


CASES = {
    "encoder, no padding": dict(module=Heads(False), mask=None),
    "encoder, boolean padding mask": dict(module=Heads(False), mask=padding()),
    "encoder, additive float mask": dict(
        module=Heads(False), mask=torch.where(padding(), 0.0, torch.finfo(torch.bfloat16).min).to(torch.bfloat16)
    ),
    "decoder, causal by rule (no mask)": dict(module=Heads(True), mask=None),
    "decoder, grouped-query heads, causal": dict(module=Heads(True, groups=2), mask=None, groups=2),
    "decoder, left padding and causal mask": dict(
        module=Heads(True), mask=padding(left=True) & torch.ones(9, 9, dtype=torch.bool).tril()
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_short_bf16_attention_matches_sdpa(case, monkeypatch):
    spec = CASES[case]
    query, key, value = qkv(groups=spec.get("groups", 1))
    expected, _ = sdpa_attention_forward(spec["module"], query, key, value, spec["mask"], scaling=0.25)
    fused = []
    real = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", lambda *a, **k: fused.append(1) or real(*a, **k))
    got, weights = short_attention(spec["module"], query, key, value, spec["mask"], scaling=0.25)
    assert not fused and weights is None  # the plain products ran, not the fused kernel
    assert got.shape == expected.shape == (3, 9, 4, 16) and got.dtype == torch.bfloat16
    valid = torch.ones(3, 9, dtype=torch.bool)
    if "left padding" in case:  # padding queries attend to nothing: their rows are never read
        valid = padding(left=True)[:, 0, 0, :]
    assert torch.isfinite(got).all()
    assert torch.allclose(got[valid].float(), expected[valid].float(), atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("dtype, tokens", [(torch.float32, 9), (torch.bfloat16, SHORT_TOKENS + 1)])
def test_float32_and_long_inputs_take_the_fused_kernel_unchanged(dtype, tokens):
    module = Heads(False)
    query, key, value = qkv(q_tokens=tokens, kv_tokens=tokens, dtype=dtype)
    mask = padding(tokens=tokens)
    expected, _ = sdpa_attention_forward(module, query, key, value, mask)
    got, _ = short_attention(module, query, key, value, mask)
    assert torch.equal(got, expected)


def test_position_bias_goes_to_the_fused_path():
    module = Heads(False)
    query, key, value = qkv()
    bias = torch.randn(1, 4, 9, 9).to(torch.bfloat16)
    expected, _ = sdpa_attention_forward(module, query, key, value, None, position_bias=bias)
    got, _ = short_attention(module, query, key, value, None, position_bias=bias)
    assert torch.equal(got, expected)


def _paths(tiny, multimodal, rerankers):
    return {
        "qwen3-embedding": tiny["qwen"], "bert": tiny["bert_cls"], "siglip2": multimodal["siglip2"],
        "siglip": multimodal["siglip"], "clip": multimodal["clip"], "qwen3-reranker": rerankers["qwen3"],
        "bert-ce": rerankers["bert"], "xlmr-ce": rerankers["xlmr"],
    }


@pytest.mark.parametrize("family", ["qwen3-embedding", "bert", "siglip2", "siglip", "clip", "qwen3-reranker", "bert-ce", "xlmr-ce"])
def test_every_family_switches_and_serves_what_the_fused_kernel_serves(family, tiny, multimodal, rerankers, monkeypatch):
    """Each family's tiny model under bf16 autocast: switched to the short path (sub-models
    included), then the self-check's sample gives torch's fused-kernel result to bf16's rounding,
    with the fused kernel left only to inputs longer than SHORT_TOKENS."""
    path = _paths(tiny, multimodal, rerankers)[family]
    model = load_model(ModelSpec(name=family, reference=path), "cpu", "float32")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused = sample_outputs(model)
        assert use_short_attention(model.model)
        assert model.model.config._attn_implementation == ATTENTION
        for sub in model.model.config.sub_configs:
            assert getattr(model.model.config, sub)._attn_implementation == ATTENTION
        lengths = []
        real = torch.nn.functional.scaled_dot_product_attention
        monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention",
                            lambda q, k, *a, **kw: lengths.append(k.shape[-2]) or real(q, k, *a, **kw))
        short = sample_outputs(model)
    assert all(length > SHORT_TOKENS for length in lengths)  # image patches may be longer: fused
    for name, rows in fused.items():
        assert np.isfinite(short[name]).all()
        if name == "pairs":
            np.testing.assert_allclose(short[name], rows, atol=0.05 * max(1.0, np.abs(rows).max()))
        else:
            cosines = (rows * short[name]).sum(1) / np.linalg.norm(rows, axis=1) / np.linalg.norm(short[name], axis=1)
            assert cosines.min() >= 0.999, (name, cosines.min())


def test_a_model_not_on_sdpa_is_left_alone(minilm_path):
    """use_short_attention only replaces `sdpa` (a model loaded with another implementation keeps
    it), and registering twice is harmless."""
    model = load_model(ModelSpec(name="minilm", reference=minilm_path), "cpu", "float32")
    assert model.model.config._attn_implementation == "sdpa"
    model.model.set_attn_implementation("eager")
    assert not use_short_attention(model.model) and model.model.config._attn_implementation == "eager"
    attention.register()
    attention.register()
