"""Text embedding models: transformers `AutoModel` + `AutoTokenizer`, pooled and normalised as
sentence-transformers does, without sentence-transformers at run time.

Recipes followed:
- sentence-transformers models: `SentenceTransformer(path).encode(texts)`: prompt prepended,
  optional lower-casing, tokenizer truncation at `max_seq_length`, pooling from the Pooling module.
- Qwen3-Embedding: last-token pooling, left padding, EOS appended by the tokenizer's
  post-processor, query template `Instruct: {task}\\nQuery:{query}`.
"""

from __future__ import annotations

import inspect
from typing import Optional, Sequence

import numpy as np
import torch

from .items import TokenIds, pad_batch
from .prompts import PromptChoice
from .interfaces import TokenStates
from .text_encoder import TextEncoder
from .text_config import SUPPORTED_MODULES, TextConfig, resolve_max_length, text_config
from .files import ModelFiles
from .loading import load_pretrained, pad_token_id
from .pooling import pool
from .unpadded import packed_encoder, pool_packed
from .unpadded_decoder import packed_decoder
from ..config.model_specs import ModelSpec


class TextEmbedder(TextEncoder, TokenStates):
    """A transformers encoder or decoder turned into a sentence embedder.

    `forward` returns (batch, dimension) float32 pooled states (not normalised); inputs are
    prepared by `prepare_texts` / `prepare_ids`.
    """

    #: The transformers class the weights load with, and the sentence-transformers modules and
    #: default pooling of the family (text_config.text_config); a subclass may change them.
    auto_class = "AutoModel"
    #: `/embed_all`'s hidden states are batched like the vectors (the batcher's `output`).
    batched_outputs: tuple[str, ...] = ("token_states",)
    st_modules = SUPPORTED_MODULES
    pooling_default: Optional[str] = None

    def __init__(self, spec: ModelSpec, device: str, dtype: str, files: ModelFiles, config: dict):
        super().__init__(spec, device)
        self.text_config: TextConfig = text_config(spec, files, config, self.st_modules, self.pooling_default)
        self.prompts = self.text_config.prompts
        self.default_prompt_name = self.text_config.default_prompt_name
        self.instruction_template = self.text_config.instruction_template
        self.lowercase = self.text_config.lowercase
        tokenizer, self.model, self.dtype = load_pretrained(spec, device, dtype, self.auto_class, self.text_config.transformer_path)
        #: The encoder or decoder body whose last hidden states the outputs read (the model itself,
        #: or the base model under a task head).
        self.body = self.model.base_model
        self.set_tokenizer(tokenizer)
        self.max_length = resolve_max_length(
            spec.name,
            self.text_config.max_length_option,
            self.text_config.max_seq_length,
            getattr(tokenizer, "model_max_length", None),
            config,
        )
        self.padding_side = self.text_config.padding_side or (
            "left" if self.text_config.pooling == "lasttoken" else tokenizer.padding_side
        )
        self.pad_id = pad_token_id(tokenizer)
        self.vocab_rows = self.model.get_input_embeddings().num_embeddings
        self.dimension = int(getattr(self.model.config, "hidden_size", 0)) or self._probe_dimension()
        params = inspect.signature(self.body.forward).parameters
        self._position_ids = "position_ids" in params and self.padding_side == "left"
        #: The packed forward (models/unpadded.py, unpadded_decoder.py) for BERT-family encoders and
        #: Qwen3, unless turned off.
        self._packed = None
        if spec.option("unpadded", True) and device == "cpu":
            self._packed = packed_encoder(self.body) or packed_decoder(self.body)
        self.unpadded = self._packed is not None

    def _probe_dimension(self) -> int:
        return int(self.forward([TokenIds(self.prepare_texts(["a"], PromptChoice(), True, "right")[0].ids)]).shape[1])

    def info(self) -> dict:
        data = super().info()
        data.update(
            pooling=self.text_config.pooling,
            prompts=sorted(self.text_config.prompts),
            default_prompt_name=self.text_config.default_prompt_name,
            instruction_template=self.text_config.instruction_template,
            padding_side=self.padding_side,
        )
        return data

    # ---------------------------------------------------------------- forward
    def _last_hidden(self, items: Sequence[TokenIds]) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """The batch padded on the model's side and run: (last hidden states (batch, seq, dim),
        the attention mask as a tensor, and as numpy). Called under `torch.inference_mode`."""
        ids, mask = pad_batch([item.ids for item in items], self.pad_id, self.padding_side == "left")
        attention = torch.from_numpy(mask).to(self.device)
        kwargs = {"input_ids": torch.from_numpy(ids).to(self.device), "attention_mask": attention}
        if self._position_ids:
            kwargs["position_ids"] = (attention.cumsum(dim=1) - 1).clamp(min=0)
        output = self.body(**kwargs)
        hidden = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]
        return hidden, attention, mask

    def forward(self, items: Sequence[TokenIds]) -> np.ndarray:
        with torch.inference_mode():
            if self._packed is not None:
                batch = self._packed.pack([item.ids for item in items], device=self.device)
                pooled = pool_packed(self.text_config.pooling, self._packed(batch), batch)
            else:
                hidden, attention, _ = self._last_hidden(items)
                pooled = pool(self.text_config.pooling, hidden, attention)
        return pooled.to("cpu", torch.float32).numpy()

    def token_states(self, items: Sequence[TokenIds]) -> list[np.ndarray]:
        """The last hidden states of each item, one row per token fed, special tokens included,
        padding left out: (len(item), hidden size) float32, not pooled nor normalised (TEI's
        `/embed_all`); a batched output."""
        with torch.inference_mode():
            return [rows.to("cpu", torch.float32).numpy() for rows in self.token_hidden(items)]

    def token_hidden(self, items: Sequence[TokenIds]) -> list[torch.Tensor]:
        """Per item, its last hidden states on the model's device, (len(item), hidden size) in
        the model's dtype, padding left out (packed: only real tokens are computed). Call under
        `torch.inference_mode`."""
        if self._packed is not None:
            batch = self._packed.pack([item.ids for item in items], device=self.device)
            return list(torch.split(self._packed(batch), [len(item) for item in items]))
        hidden, attention, _ = self._last_hidden(items)
        return [hidden[row][attention[row].bool()] for row in range(len(items))]

    def warmup(self) -> None:
        with self.lock:
            self.forward(self.prepare_texts(["warm-up"], PromptChoice(), True, "right"))

