"""Attention over short inputs in bf16 on the CPU: plain matrix products instead of torch's fused
kernel.

transformers runs a model's attention through `torch.nn.functional.scaled_dot_product_attention`
(`attn_implementation="sdpa"`). On the CPU in bf16 its fused (flash) kernel has a fixed cost per
head and block that dominates at the lengths embedding requests have: measured on an AMD EPYC
(AVX512-BF16, 1 thread, 12 heads of 32), queries · keys, softmax, · values as three plain
operations took 0.70 ms against 1.55 ms for 32 inputs of 16 tokens, 1.09 against 2.32 ms for 16
of 33, 1.39 against 1.93 ms for 8 of 64; even at 128 tokens and fused from 256 on
(CONCURRENCY_ANALYSIS.md). In float32 the two were within 5% at 33 tokens.

`short_attention` is registered with transformers under ATTENTION (and the `sdpa` mask builder
under the same name). It computes what `sdpa_attention_forward` computes, the same masks and
causal rule, for bf16 inputs on the CPU of at most SHORT_TOKENS keys: scores = q·kᵀ × scaling +
mask, softmax in float32 (cast back to bf16), × v; grouped-query heads are repeated as transformers
repeats them. Anything else (float32, longer inputs, CUDA, position biases, paged caches, soft
capping, attention sinks) goes to `sdpa_attention_forward` itself, so float32 results are
unchanged. `use_short_attention(model)` switches a model that uses `sdpa` to it: acceleration.py
does so for models serving in bf16 on the CPU, after which the precision self-check's threshold
still holds (tests/test_precision.py).
"""

from __future__ import annotations

from typing import Any, Optional

import torch

#: The implementation name registered with transformers' AttentionInterface.
ATTENTION = "sdpa_short_bf16"
#: Keys (tokens) up to which bf16 attention on the CPU runs as plain products: measured faster up
#: to 64 (1.4-2.2x), even at 128, slower from 256.
SHORT_TOKENS = 64
#: Keyword arguments that only the fused path handles: present and not None, the call goes there.
_FUSED_ONLY = ("position_bias", "cache", "softcap", "s_aux")

_registered = False


def register() -> None:
    """Register ATTENTION with transformers (attention function and mask builder), once."""
    global _registered
    if _registered:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION, short_attention)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)
    _registered = True


def _repeat_kv(states: torch.Tensor, groups: int) -> torch.Tensor:
    """(batch, kv_heads, tokens, dim) -> (batch, kv_heads x groups, tokens, dim), each head repeated
    `groups` times in place (transformers' `repeat_kv`)."""
    batch, heads, tokens, dim = states.shape
    return states[:, :, None].expand(batch, heads, groups, tokens, dim).reshape(batch, heads * groups, tokens, dim)


def short_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Optional[torch.Tensor],
    dropout: float = 0.0,
    scaling: Optional[float] = None,
    is_causal: Optional[bool] = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature: query (batch, heads, q_tokens, dim), key and
    value (batch, kv_heads, kv_tokens, dim), `attention_mask` boolean (True: attend) or additive,
    broadcastable to (batch, heads, q_tokens, kv_tokens), or None. Returns ((batch, q_tokens,
    heads, dim), None), as `sdpa_attention_forward` does, which handles every call but short bf16
    ones on the CPU."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if (
        query.dtype != torch.bfloat16 or query.device.type != "cpu" or key.shape[2] > SHORT_TOKENS
        or (dropout and module.training) or any(kwargs.get(name) is not None for name in _FUSED_ONLY)
    ):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )
    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1:
        key, value = _repeat_kv(key, groups), _repeat_kv(value, groups)
    q_tokens, kv_tokens = query.shape[2], key.shape[2]
    # sdpa_attention_forward's rule: causal only without a mask, for more than one query token
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    if q_tokens > 1 and attention_mask is None and causal:
        key, value = key[:, :, :q_tokens], value[:, :, :q_tokens]  # its crop of a longer cache
        kv_tokens = key.shape[2]
        attention_mask = torch.ones(q_tokens, kv_tokens, dtype=torch.bool, device=query.device).tril()
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(-1, -2)).float() * scale
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(torch.float32).min)  # finite: no NaN rows
        else:
            scores = scores + attention_mask.float()
    probs = torch.softmax(scores, dim=-1).to(value.dtype)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), None


def use_short_attention(model: torch.nn.Module) -> bool:
    """Switch a transformers model (and its sub-models) from `sdpa` to ATTENTION, in place.
    Returns whether it now uses it (False: another implementation, or a model that cannot switch)."""
    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) != "sdpa" or not hasattr(model, "set_attn_implementation"):
        return False
    register()
    try:
        model.set_attn_implementation(ATTENTION)
    except (ValueError, AttributeError, TypeError, KeyError):  # a model transformers cannot switch
        return False
    return config._attn_implementation == ATTENTION
