"""PyLate ColBERT models: a transformers encoder, then a Dense projection, one vector per token.

Recipe: `pylate.models.ColBERT(path).encode(texts, is_query=...)`, read from PyLate's layout
(`modules.json`: Transformer, then `pylate.models.Dense.Dense` with `linear.weight`;
`config_sentence_transformers.json`: `query_prefix`, `document_prefix`, `query_length`,
`document_length`, `attend_to_expansion_tokens`, `skiplist_words`):

- a text is tokenised to at most `query_length - 1` (query) or `document_length - 1` (document)
  tokens, special tokens included, and the prefix token is inserted after the first token;
- query expansion: a query is padded to `query_length` with the mask token; the padding is not
  attended to (unless `attend_to_expansion_tokens`), but every query position gives a vector;
- a document keeps the vectors of its tokens that are not in the skiplist (punctuation);
- each vector is L2-normalised by the caller; MaxSim sums over the query's vectors.
"""

from __future__ import annotations

import string
from typing import Any, Sequence

import numpy as np
import torch

from ..config.model_specs import ModelSpec
from ..config.settings import SettingsError
from ..domain.errors import Unprocessable
from .files import ModelFiles
from .interfaces import MultiVectorEncoder
from .items import MaskedIds, pad_batch
from .prompts import PromptChoice
from .text import TextEmbedder
from .text_config import module_types

COLBERT_MODULES = ("Transformer", "Dense")
IDENTITY = ("torch.nn.modules.linear.Identity", "torch.nn.Identity")


def _dense(files: ModelFiles, folder: str, hidden: int, name: str) -> torch.nn.Linear:
    from safetensors.torch import load_file

    config = files.json(f"{folder}/config.json")
    if not isinstance(config, dict) or int(config.get("in_features", -1)) != hidden:
        raise SettingsError(f"model {name!r}: {folder}/config.json must name in_features {hidden}")
    if str(config.get("activation_function", IDENTITY[0])) not in IDENTITY:
        raise SettingsError(f"model {name!r}: a ColBERT Dense activation other than Identity is not supported")
    path = files.path(f"{folder}/model.safetensors")
    if path is None:
        raise SettingsError(f"model {name!r}: {folder}/model.safetensors is missing")
    state = {k.removeprefix("linear."): v.float() for k, v in load_file(path).items()}
    layer = torch.nn.Linear(hidden, int(config["out_features"]), bias="bias" in state)
    layer.load_state_dict(state)
    return layer.eval()


class PyLateColbert(TextEmbedder, MultiVectorEncoder):
    """A PyLate ColBERT model: `token_vectors` of queries and documents (module docstring)."""

    st_modules = COLBERT_MODULES
    pooling_default = "cls"  # unused: ColBERT does not pool
    serves_dense = False
    batched_outputs = ("token_vectors",)

    def __init__(self, spec: ModelSpec, device: str, dtype: str, files: ModelFiles, config: dict):
        super().__init__(spec, device, dtype, files, config)
        self._packed, self.unpadded = None, False  # per-item attention masks: the padded forward
        st = files.json("config_sentence_transformers.json")
        st = st if isinstance(st, dict) else {}
        self.query_length = int(st.get("query_length") or 32)
        self.document_length = int(st.get("document_length") or 180)
        self.attend_to_expansion = bool(st.get("attend_to_expansion_tokens", False))
        tokenizer = self.tokenizer
        self.prefix_ids = {}
        for role, default in (("query", "[Q] "), ("document", "[D] ")):
            token = str(st.get(f"{role}_prefix") or default)
            token_id = tokenizer.convert_tokens_to_ids(token)
            if token_id is None or token_id == tokenizer.unk_token_id:
                raise SettingsError(f"model {spec.name!r}: its {role} prefix {token!r} is not a token of its tokenizer")
            self.prefix_ids[role] = int(token_id)
        if tokenizer.mask_token_id is None:
            raise SettingsError(f"model {spec.name!r}: query expansion needs a mask token")
        self.expansion_id = int(tokenizer.mask_token_id)
        words = st.get("skiplist_words") or list(string.punctuation)
        self.skiplist = frozenset(int(tokenizer.convert_tokens_to_ids(w)) for w in words)
        folder = next((path for kind, path in module_types(files) if kind == "Dense"), None)
        hidden = int(self.model.config.hidden_size)
        self.projection = _dense(files, folder, hidden, spec.name).to(device) if folder else None
        self.multi_vector_dimension = self.projection.out_features if self.projection is not None else hidden
        self.max_length = self.document_length

    def vectors_bound(self, tokens: int, is_query: bool) -> int:
        """A query always gives `query_length` vectors; a document at most its tokens plus the
        prefix, within `document_length`."""
        vectors = self.query_length if is_query else min(tokens + 1, self.document_length)
        return vectors * self.multi_vector_dimension

    def info(self) -> dict:
        data = super().info()
        data.update(outputs=["multi-vector"], multi_vector_dimension=self.multi_vector_dimension,
                    query_length=self.query_length, document_length=self.document_length, pooling=None)
        return data

    def prepare_multi_vector(
        self, texts: Sequence[str], prompt: Any, truncate: bool, direction: str, is_query: bool, param: str = "input",
    ) -> list[MaskedIds]:
        """Queries or documents as PyLate tokenises them (module docstring); raises Unprocessable
        (422) for a text over the window with `truncate` false."""
        length = (self.query_length if is_query else self.document_length) - 1
        inputs = self.with_prompt(texts, prompt)
        if truncate:
            inputs = self.tokenize.windows(inputs, length - self.tokenize.specials, direction)
        rows = self.tokenize.encode_ids(inputs, truncation=truncate, max_length=length if truncate else None, side=direction)
        items = []
        for index, ids in enumerate(rows):
            if len(ids) > length:
                raise Unprocessable(
                    f"{param}[{index}] has {len(ids)} tokens; model {self.name!r} accepts at most {length} per "
                    f"{'query' if is_query else 'document'} (send truncate: true to cut it)", param=param,
                )
            ids = list(ids[:1]) + [self.prefix_ids["query" if is_query else "document"]] + list(ids[1:])
            attention = [1] * len(ids)
            if is_query:
                pad = self.query_length - len(ids)
                ids += [self.expansion_id] * pad
                attention += [1 if self.attend_to_expansion else 0] * pad
                keep = [True] * len(ids)
            else:
                keep = [token not in self.skiplist for token in ids]
            items.append(MaskedIds(ids, attention, keep))
        return items

    def token_vectors(self, items: Sequence[MaskedIds]) -> list[np.ndarray]:
        ids, mask = pad_batch([item.ids for item in items], self.pad_id, False)
        for row, item in enumerate(items):
            mask[row, : len(item)] = item.attention
        with torch.inference_mode():
            hidden = self.body(input_ids=torch.from_numpy(ids).to(self.device),
                               attention_mask=torch.from_numpy(mask).to(self.device)).last_hidden_state
            if self.projection is not None:
                hidden = self.projection(hidden.float())
            rows = hidden.to("cpu", torch.float32).numpy()
        return [rows[row, : len(item)][np.asarray(item.keep, dtype=bool)] for row, item in enumerate(items)]

    def warmup(self) -> None:
        with self.lock:
            self.token_vectors(self.prepare_multi_vector(["warm-up"], PromptChoice(), True, "right", is_query=True))
