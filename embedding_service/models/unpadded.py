"""Unpadded ("packed") execution of BERT-style encoders: the linear layers run on the real tokens
of a batch only, concatenated into one (total_tokens, hidden) matrix; attention runs per sequence.

A padded batch costs items x longest tokens in every linear layer; real corpora mix titles and
long passages, so a batch of texts in arrival order pads to several times its real tokens (4.6x
for a log-normal mix of median 42 and p90 123 words in batches of 32; CONCURRENCY_ANALYSIS.md).
Packed, every linear layer (about 95% of a base-size encoder's multiply-adds at these lengths)
costs the real tokens only, as TEI's padding-free GPU backends do with variable-length
attention. Attention runs per group of sequences of similar length (ATTENTION_PADDING), through
torch's `scaled_dot_product_attention` on a padded copy of each group's q, k and v made for
attention alone: a batch that mixes a title and a long passage pays neither in its linear layers
nor in its attention (CONCURRENCY_ANALYSIS.md, "Unpadded execution").

The recipe is the module's own forward (transformers' `BertModel` / `XLMRobertaModel`: embeddings
with absolute positions, then per layer self-attention, output projection + residual + LayerNorm,
feed-forward + residual + LayerNorm), with the module's own layers called in the same order, so
any replacement of its `nn.Linear` layers (oneDNN, packed bf16) applies here too. Outputs equal
the padded forward's to float32 rounding (tests/unit/models/test_unpadded.py: cosine >= 0.99999).

`packed_encoder(module)` returns a `PackedEncoder` for the families it supports, None for the
others (which keep the padded forward).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

#: transformers model types whose base model this module runs packed.
PACKED_TYPES = ("bert", "xlm-roberta", "roberta", "camembert")


#: Padded ÷ real tokens an attention group may reach: the sequences of a batch are split, longest
#: first, into groups of similar length, and each group's attention runs padded to its own longest.
ATTENTION_PADDING = 1.25


@dataclass
class AttentionGroup:
    """Sequences of similar length whose attention runs together: `count` sequences padded to
    `longest`; `tokens` (group tokens,) their tokens' rows in the packed batch (None: the whole
    batch, in order); `slots` their rows in the (count x longest) layout (None: no padding);
    `key_mask` (count, 1, 1, longest) bool, True on real keys (None: no padding)."""

    count: int
    longest: int
    tokens: Optional[torch.Tensor]
    slots: Optional[torch.Tensor]
    key_mask: Optional[torch.Tensor]


@dataclass
class Packed:
    """A batch as concatenated real tokens: `ids`, `positions` and `type_ids` (total,) int64;
    `lengths` (batch,) int64; `offsets` (batch + 1,) the start of each sequence (cu_seqlens);
    `rows` (total,) the batch row of each token; `groups`, how attention splits the sequences."""

    ids: torch.Tensor
    positions: torch.Tensor
    type_ids: torch.Tensor
    lengths: torch.Tensor
    offsets: torch.Tensor
    rows: torch.Tensor
    groups: list[AttentionGroup]

    @property
    def size(self) -> int:
        return int(self.lengths.shape[0])


def attention_groups(lengths: np.ndarray, offsets: np.ndarray, device: str) -> list[AttentionGroup]:
    """The sequences split, longest first, into groups whose padding stays within
    ATTENTION_PADDING x their real tokens (one group with no copy when every length is equal)."""
    if int(lengths.min()) == int(lengths.max()):
        return [AttentionGroup(len(lengths), int(lengths[0]), None, None, None)]
    order = np.argsort(-lengths, kind="stable")
    members: list[list[int]] = [[]]
    real = 0
    for index in order:
        group = members[-1]
        length = int(lengths[index])
        if group and (len(group) + 1) * int(lengths[group[0]]) > ATTENTION_PADDING * (real + length):
            members.append([])
            group, real = members[-1], 0
        group.append(int(index))
        real += length
    groups = []
    for group in members:
        sizes = lengths[group]
        longest = int(sizes.max())
        tokens = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in group])
        within = np.concatenate([np.arange(n) for n in sizes])
        slots = np.repeat(np.arange(len(group)), sizes) * longest + within
        padded = int(sizes.min()) != longest
        mask = (np.arange(longest)[None, :] < sizes[:, None]).reshape(len(group), 1, 1, longest) if padded else None
        groups.append(AttentionGroup(
            len(group), longest, torch.from_numpy(tokens).to(device),
            torch.from_numpy(slots).to(device) if padded else None,
            torch.from_numpy(mask).to(device) if padded else None,
        ))
    return groups


def pack(rows: Sequence[Sequence[int]], type_rows: Optional[Sequence[Optional[Sequence[int]]]] = None,
         position_offset: int = 0, device: str = "cpu") -> Packed:
    """Token rows (and segment type rows, where the model uses them) concatenated. Positions count
    from `position_offset` in each row (XLM-R: padding_idx + 1)."""
    lengths = np.fromiter((len(row) for row in rows), dtype=np.int64, count=len(rows))
    total = int(lengths.sum())
    ids = np.fromiter((t for row in rows for t in row), dtype=np.int64, count=total)
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    batch_rows = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
    within = np.arange(total, dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    if type_rows is not None and any(t is not None for t in type_rows):
        types = np.concatenate([np.asarray(t if t is not None else [0] * len(r), dtype=np.int64)
                                for r, t in zip(rows, type_rows)])
    else:
        types = np.zeros(total, dtype=np.int64)
    as_tensor = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
    return Packed(as_tensor(ids), as_tensor(within + position_offset), as_tensor(types), as_tensor(lengths),
                  as_tensor(offsets), as_tensor(batch_rows), attention_groups(lengths, offsets, device))


class PackedEncoder:
    """The packed forward of one BERT-style base model (`base`: a `BertModel`, `XLMRobertaModel`
    or the `.bert` / `.roberta` of a sequence classifier)."""

    def __init__(self, base: torch.nn.Module):
        self.base = base
        embeddings = base.embeddings
        padding_idx = getattr(embeddings, "padding_idx", None)
        #: XLM-R and RoBERTa number positions from padding_idx + 1; BERT from 0.
        self.position_offset = padding_idx + 1 if getattr(base.config, "model_type", "") != "bert" and padding_idx is not None else 0
        self.heads = base.config.num_attention_heads

    def pack(self, rows: Sequence[Sequence[int]], type_rows=None, device: str = "cpu") -> Packed:
        return pack(rows, type_rows, self.position_offset, device)

    def __call__(self, batch: Packed) -> torch.Tensor:
        """(total_tokens, hidden): the last hidden state of every real token, in `batch` order."""
        embeddings = self.base.embeddings
        hidden = embeddings.word_embeddings(batch.ids) + embeddings.position_embeddings(batch.positions)
        if getattr(embeddings, "token_type_embeddings", None) is not None:
            hidden = hidden + embeddings.token_type_embeddings(batch.type_ids)
        hidden = embeddings.LayerNorm(hidden)
        for layer in self.base.encoder.layer:
            attention = layer.attention
            context = self._attend(attention.self, hidden, batch)
            hidden = attention.output.LayerNorm(attention.output.dense(context) + hidden)
            inner = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(hidden))
            hidden = layer.output.LayerNorm(layer.output.dense(inner) + hidden)
        return hidden

    def _attend(self, module: torch.nn.Module, hidden: torch.Tensor, batch: Packed) -> torch.Tensor:
        """Self-attention of every sequence over its own tokens: (total_tokens, hidden)."""
        shape = (hidden.shape[0], self.heads, hidden.shape[1] // self.heads)
        return attend(module.query(hidden).view(shape), module.key(hidden).view(shape), module.value(hidden).view(shape),
                      batch, causal=False)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, batch: Packed, causal: bool) -> torch.Tensor:
    """Scaled dot-product attention of each sequence over its own tokens (causal: over its own
    earlier tokens), group by group (`Packed.groups`): q, k, v (total_tokens, heads, head_dim)
    -> (total_tokens, heads x head_dim). In a group the sequences are padded on the right, so
    causal attention needs no key mask: a real token never sees a later position."""
    total, heads, head = q.shape
    if len(batch.groups) == 1 and batch.groups[0].slots is None:  # one length: views, no copy
        group = batch.groups[0]
        shape = (group.count, group.longest, heads, head)
        out = F.scaled_dot_product_attention(*(x.view(shape).transpose(1, 2) for x in (q, k, v)), is_causal=causal)
        return out.transpose(1, 2).reshape(total, heads * head)
    out = q.new_empty(total, heads * head)
    for group in batch.groups:
        rows = group.count * group.longest

        def layout(x: torch.Tensor) -> torch.Tensor:
            x = x.index_select(0, group.tokens)
            if group.slots is not None:
                x = x.new_zeros(rows, heads, head).index_copy_(0, group.slots, x)
            return x.view(group.count, group.longest, heads, head).transpose(1, 2)

        mask = None if causal else group.key_mask
        part = F.scaled_dot_product_attention(layout(q), layout(k), layout(v), attn_mask=mask, is_causal=causal)
        part = part.transpose(1, 2).reshape(rows, heads * head)
        if group.slots is not None:
            part = part.index_select(0, group.slots)
        out.index_copy_(0, group.tokens, part)
    return out


def packed_encoder(base: torch.nn.Module) -> Optional[PackedEncoder]:
    """A PackedEncoder for `base` when its family and configuration are ones this module runs
    exactly (absolute positions, an encoder without cross-attention, the standard layer layout);
    None otherwise."""
    config = getattr(base, "config", None)
    if config is None or getattr(config, "model_type", None) not in PACKED_TYPES:
        return None
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        return None
    if getattr(config, "position_embedding_type", "absolute") not in (None, "absolute"):
        return None
    try:
        layer = base.encoder.layer[0]
        parts = (base.embeddings.word_embeddings, base.embeddings.position_embeddings, base.embeddings.LayerNorm,
                 layer.attention.self.query, layer.attention.self.key, layer.attention.self.value,
                 layer.attention.output.dense, layer.attention.output.LayerNorm, layer.intermediate.dense,
                 layer.intermediate.intermediate_act_fn, layer.output.dense, layer.output.LayerNorm)
    except (AttributeError, IndexError, TypeError):
        return None
    if any(part is None for part in parts):
        return None
    return PackedEncoder(base)


def pool_packed(mode: str, hidden: torch.Tensor, batch: Packed) -> torch.Tensor:
    """(batch, hidden) float32: sentence-transformers' pooling `mode` over each sequence's real
    tokens of a packed (total_tokens, hidden) output (the same modes as pooling.POOLERS)."""
    hidden = hidden.float()
    if mode == "cls":
        return hidden.index_select(0, batch.offsets[:-1])
    if mode == "lasttoken":
        return hidden.index_select(0, batch.offsets[1:] - 1)
    if mode == "max":
        out = hidden.new_full((batch.size, hidden.shape[1]), -1e9)
        return out.scatter_reduce_(0, batch.rows.unsqueeze(1).expand_as(hidden), hidden, "amax", include_self=True)
    sums = hidden.new_zeros(batch.size, hidden.shape[1]).index_add_(0, batch.rows, hidden)
    counts = batch.lengths.to(hidden.dtype).unsqueeze(1)
    if mode == "mean":
        return sums / counts
    if mode == "mean_sqrt_len_tokens":
        return sums / counts.sqrt()
    raise ValueError(f"unknown pooling mode {mode!r}")


class PackedClassifier:
    """The packed forward of a BERT-style sequence classifier (`BertForSequenceClassification`:
    pooler on [CLS], then the classifier; `XLMRobertaForSequenceClassification` and RoBERTa: their
    classification head on the first token): (batch, labels) logits."""

    def __init__(self, model: torch.nn.Module, encoder: PackedEncoder):
        self.model = model
        self.encoder = encoder

    def __call__(self, batch: Packed) -> torch.Tensor:
        first = self.encoder(batch).index_select(0, batch.offsets[:-1])  # (batch, hidden)
        base = self.encoder.base
        if getattr(self.model.config, "model_type", "") == "bert":
            return self.model.classifier(self.model.dropout(base.pooler(first.unsqueeze(1))))
        return self.model.classifier(first.unsqueeze(1))


def packed_classifier(model: torch.nn.Module) -> Optional[PackedClassifier]:
    """A PackedClassifier for BERT, XLM-R and RoBERTa sequence classifiers that `packed_encoder`
    supports (a BERT one with its pooler), None otherwise."""
    base = getattr(model, "base_model", None)
    encoder = packed_encoder(base) if base is not None and base is not model else None
    if encoder is None or getattr(model, "classifier", None) is None:
        return None
    if getattr(model.config, "model_type", "") == "bert" and (getattr(base, "pooler", None) is None or not hasattr(model, "dropout")):
        return None
    return PackedClassifier(model, encoder)
