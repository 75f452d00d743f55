"""Unpadded execution of Qwen3 decoders (Qwen3-Embedding, Qwen3-Reranker): the linear layers on the
concatenated real tokens of a batch, causal attention per group of similar lengths
(models/unpadded.py's `attend`).

The recipe is transformers' `Qwen3Model.forward` with the module's own layers, in order: token
embeddings; rotary cos/sin from the model's `rotary_emb` at positions 0..n-1 of each sequence
(what the padded path's `position_ids` give under left padding); per layer RMSNorm, q/k/v
projections, per-head q/k RMSNorm, rotary embedding, causal attention with the key/value heads
repeated to the query heads (grouped-query attention), output projection + residual, RMSNorm, the
gated MLP + residual; the final RMSNorm. Models with sliding-window layers keep the padded
forward. Outputs equal the padded forward's to float32 rounding (tests/unit/models/test_unpadded.py).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from .unpadded import Packed, attend, pack

#: transformers model types whose base model this module runs packed.
DECODER_TYPES = ("qwen3",)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """The second half of the last dimension negated and moved before the first (RoPE)."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class PackedDecoder:
    """The packed forward of one Qwen3 base model (`Qwen3Model`, or the `.model` of a causal LM)."""

    def __init__(self, base: torch.nn.Module):
        self.base = base
        config = base.config
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads

    def pack(self, rows: Sequence[Sequence[int]], type_rows=None, device: str = "cpu") -> Packed:
        return pack(rows, None, 0, device)

    def __call__(self, batch: Packed) -> torch.Tensor:
        """(total_tokens, hidden): the last hidden state (after the final norm) of every token."""
        base = self.base
        hidden = base.embed_tokens(batch.ids)
        cos, sin = base.rotary_emb(hidden, batch.positions.unsqueeze(0))
        cos, sin = cos[0].unsqueeze(1), sin[0].unsqueeze(1)  # (total, 1, head_dim)
        total = hidden.shape[0]
        repeat = self.heads // self.kv_heads
        for layer in base.layers[: base.config.num_hidden_layers]:
            module = layer.self_attn
            x = layer.input_layernorm(hidden)
            q = module.q_norm(module.q_proj(x).view(total, self.heads, self.head_dim))
            k = module.k_norm(module.k_proj(x).view(total, self.kv_heads, self.head_dim))
            v = module.v_proj(x).view(total, self.kv_heads, self.head_dim)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if repeat > 1:
                k, v = k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)
            hidden = hidden + module.o_proj(attend(q, k, v, batch, causal=True))
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        return base.norm(hidden)


def packed_decoder(base: torch.nn.Module) -> Optional[PackedDecoder]:
    """A PackedDecoder for a Qwen3 base model with full attention in every layer, None otherwise."""
    config = getattr(base, "config", None)
    if config is None or getattr(config, "model_type", None) not in DECODER_TYPES:
        return None
    if any(kind != "full_attention" for kind in getattr(config, "layer_types", None) or ()):
        return None
    if getattr(config, "use_sliding_window", False):
        return None
    try:
        layer = base.layers[0]
        parts = (base.embed_tokens, base.rotary_emb, base.norm, layer.input_layernorm, layer.post_attention_layernorm,
                 layer.mlp, layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj,
                 layer.self_attn.o_proj, layer.self_attn.q_norm, layer.self_attn.k_norm)
    except (AttributeError, IndexError, TypeError):
        return None
    return PackedDecoder(base) if all(part is not None for part in parts) else None
