"""BGE-M3: one XLM-R body, three outputs (dense, lexical weights, ColBERT vectors).

A model directory with `sparse_linear.pt` and `colbert_linear.pt` beside its weights (BAAI/bge-m3's
layout) is served as all three at once. Recipe: FlagEmbedding's
`BGEM3FlagModel(path).encode(return_dense, return_sparse, return_colbert_vecs)`:

- dense: the CLS token's last hidden state, L2-normalised (the text family's `forward`, from the
  model's own sentence-transformers pooling config);
- lexical weights: `relu(sparse_linear(h))` per token, the largest kept per token id, the
  tokenizer's CLS, EOS, PAD and UNK tokens dropped;
- ColBERT: `colbert_linear(h[1:])` over the real tokens (every token but the first), L2-normalised
  per token by the caller; scored by MaxSim averaged over the query's vectors (`colbert_score`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..config.model_specs import ModelSpec
from ..config.settings import SettingsError
from .families import COLBERT_HEAD, SPARSE_HEAD
from .files import ModelFiles
from .interfaces import MultiVectorEncoder, SparseEncoder
from .items import SparseVector, TokenIds, max_per_id
from .text import TextEmbedder

#: The special tokens FlagEmbedding leaves out of lexical weights.
UNUSED_TOKENS = ("cls_token", "eos_token", "pad_token", "unk_token")


def _linear(files: ModelFiles, filename: str, hidden: int, name: str) -> torch.nn.Linear:
    """A Linear layer from a state dict of `weight` (out, hidden) and `bias` (out,), float32."""
    path = files.path(filename)
    state = torch.load(path, map_location="cpu", weights_only=True)
    weight = state.get("weight") if isinstance(state, dict) else None
    if weight is None or weight.dim() != 2 or weight.shape[1] != hidden:
        raise SettingsError(f"model {name!r}: {filename} is not a linear layer over the hidden size {hidden}")
    layer = torch.nn.Linear(hidden, weight.shape[0], bias="bias" in state)
    layer.load_state_dict({k: v.float() for k, v in state.items()})
    return layer.eval()


class BgeM3(TextEmbedder, SparseEncoder, MultiVectorEncoder):
    """BGE-M3: `forward` gives the dense vectors (the text family's), `lexical_weights` the
    sparse vectors, `token_vectors` the ColBERT vectors (see the module docstring)."""

    maxsim_average = True
    batched_outputs = TextEmbedder.batched_outputs + ("lexical_weights", "token_vectors")

    def __init__(self, spec: ModelSpec, device: str, dtype: str, files: ModelFiles, config: dict):
        super().__init__(spec, device, dtype, files, config)
        hidden = int(self.model.config.hidden_size)
        self.sparse_head = _linear(files, SPARSE_HEAD, hidden, spec.name).to(device)
        self.colbert_head = _linear(files, COLBERT_HEAD, hidden, spec.name).to(device)
        if self.sparse_head.out_features != 1:
            raise SettingsError(f"model {spec.name!r}: {SPARSE_HEAD} must give one weight per token")
        self.sparse_dimension = self.vocab_rows
        self.multi_vector_dimension = self.colbert_head.out_features
        specials = self.tokenizer.special_tokens_map
        self.unused_ids = frozenset(
            int(self.tokenizer.convert_tokens_to_ids(specials[token])) for token in UNUSED_TOKENS if token in specials
        )

    def info(self) -> dict:
        data = super().info()
        data.update(outputs=["dense", "sparse", "multi-vector"], multi_vector_dimension=self.multi_vector_dimension,
                    sparse_dimension=self.sparse_dimension)
        return data

    def lexical_weights(self, items: Sequence[TokenIds]) -> list[SparseVector]:
        with torch.inference_mode():
            hidden = self.token_hidden(items)
            weights = [torch.relu(self.sparse_head(rows.float()).float()).squeeze(-1).cpu().numpy() for rows in hidden]
        return [max_per_id(item.ids, row, self.unused_ids) for item, row in zip(items, weights)]

    def token_vectors(self, items: Sequence[TokenIds]) -> list[np.ndarray]:
        with torch.inference_mode():
            return [self.colbert_head(rows[1:].float()).float().cpu().numpy() for rows in self.token_hidden(items)]
