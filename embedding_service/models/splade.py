"""SPLADE: a masked-LM's logits turned into lexical weights over its vocabulary.

Recipe: sentence-transformers' `SparseEncoder(path).encode` with an `MLMTransformer` (or a
`Transformer` whose task is fill-mask) followed by `SpladePooling`: per token
`log(1 + relu(logits))` (twice log1p for the `log1p_relu` activation of OpenSearch's models), then
the maximum (or, with `pooling_strategy: sum`, the sum) over the input's real tokens. Prompts,
maximum length and lower-casing come from the model's sentence-transformers files as for the text
family; `max_active_dims` in `config_sentence_transformers.json` keeps each vector's largest
weights only, as `SparseEncoder` does.

The vocabulary projection runs on the real tokens of a batch only, all inputs together, at most
:data:`LOGIT_VALUES` logits at a time, so a batch never holds a (batch, length, vocabulary) tensor.

Inference-free SPLADE (a sentence-transformers `Router` whose `query` route is a
`SparseStaticEmbedding`, e.g. OpenSearch's `...-doc-v3-distill`): documents take the masked-LM
route above; a query (`input_type: "query"`, or the `query` prompt) is tokenised without special
tokens and gets, for each distinct token id, that id's static weight: no forward pass
(`SparseEncoder.encode_query`).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from ..config.model_specs import ModelSpec
from ..config.settings import SettingsError
from .files import ModelFiles
from .interfaces import SparseEncoder
from .items import SparseVector, TokenIds, sparse_from_dense
from .prompts import PromptChoice
from .text import TextEmbedder
from .text_config import module_types, router_folder, router_routes

#: Vocabulary logits computed at once: 8 M float32 values, 32 MB (262 tokens of a 30,522-entry
#: vocabulary; a whole batch of a small one).
LOGIT_VALUES = 8 * 1024 * 1024


class QueryIds(TokenIds):
    """A query of an inference-free SPLADE model: its token ids, without special tokens."""
SPLADE_MODULES = ("MLMTransformer", "Transformer", "SpladePooling")


def mlm_head(model: torch.nn.Module, name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The masked-LM head of `model` as a function of hidden states: BERT's `cls`, RoBERTa's and
    XLM-R's `lm_head`, DistilBERT's transform, norm and projector, ModernBERT's head and decoder.
    raises SettingsError naming the model for any other layout."""
    if hasattr(model, "cls"):
        return model.cls
    if hasattr(model, "lm_head"):
        return model.lm_head
    if hasattr(model, "vocab_projector"):
        return lambda h: model.vocab_projector(model.vocab_layer_norm(model.activation(model.vocab_transform(h))))
    if hasattr(model, "head") and hasattr(model, "decoder"):
        return lambda h: model.decoder(model.head(h))
    raise SettingsError(f"model {name!r}: its masked-LM head ({type(model).__name__}) is not one SPLADE serving knows")


class SpladeEncoder(TextEmbedder, SparseEncoder):
    """A SPLADE model: `lexical_weights` gives one sparse vector per text (module docstring)."""

    auto_class = "AutoModelForMaskedLM"
    st_modules = SPLADE_MODULES
    pooling_default = "cls"  # unused: SPLADE pools its own way
    serves_dense = False
    batched_outputs = ("lexical_weights",)

    def __init__(self, spec: ModelSpec, device: str, dtype: str, files: ModelFiles, config: dict):
        super().__init__(spec, device, dtype, files, config)
        pooling = next((path for kind, path in module_types(files) if kind == "SpladePooling"), None)
        cfg = files.json(f"{pooling}/config.json") if pooling else None
        cfg = cfg if isinstance(cfg, dict) else {}
        self.pooling_strategy = str(cfg.get("pooling_strategy", "max"))
        self.activation = str(cfg.get("activation_function", "relu"))
        if self.pooling_strategy not in ("max", "sum") or self.activation not in ("relu", "log1p_relu"):
            raise SettingsError(
                f"model {spec.name!r}: SpladePooling {self.pooling_strategy!r} with {self.activation!r} is not supported "
                "(pooling_strategy max or sum, activation_function relu or log1p_relu)"
            )
        st_config = files.json("config_sentence_transformers.json")
        active = st_config.get("max_active_dims") if isinstance(st_config, dict) else None
        self.max_active_dims: Optional[int] = int(active) if isinstance(active, int) and active > 0 else None
        self.head = mlm_head(self.model, spec.name)
        self.sparse_dimension = int(self.model.get_output_embeddings().out_features)
        self.query_weights, self.query_max_length = self._static_query_route(files, spec.name)

    def _static_query_route(self, files: ModelFiles, name: str) -> tuple[Optional[np.ndarray], int]:
        """The static weights of an inference-free model's query route ((vocabulary,) float32) and
        its query truncation length; (None, 0) for a model whose queries take the masked LM."""
        folder = router_folder(files)
        if folder is None:
            return None, 0
        routes, _ = router_routes(files, folder)
        query = routes.get("query") or []
        if not query or [kind for kind, _ in query] != ["SparseStaticEmbedding"]:
            if query and [kind for kind, _ in query] != [kind for kind, _ in routes.get("document", [])]:
                raise SettingsError(f"model {name!r}: a query route of {[k for k, _ in query]} is not supported "
                                    "(SparseStaticEmbedding, or the document route's modules)")
            return None, 0
        from safetensors.torch import load_file

        path = files.path(f"{query[0][1]}/model.safetensors")
        weight = load_file(path)["weight"].float().numpy() if path else None
        if weight is None or weight.shape != (self.sparse_dimension,):
            raise SettingsError(f"model {name!r}: its SparseStaticEmbedding must hold one weight per vocabulary entry")
        tokenizer_config = files.json(f"{query[0][1]}/tokenizer_config.json") or {}
        limit = tokenizer_config.get("model_max_length") if isinstance(tokenizer_config, dict) else None
        return weight, int(limit) if isinstance(limit, int) and 0 < limit < 1_000_000 else self.max_length

    def prepare_sparse(
        self, texts: Sequence[str], prompt: Any, truncate: bool, direction: str, is_query: bool, param: str = "input",
    ) -> list[TokenIds]:
        """Documents (and every text of a model without a static query route) as the text family
        prepares them; queries of an inference-free model as `SparseStaticEmbedding` tokenises
        them: no special tokens, cut at its tokenizer's maximum length."""
        if not is_query or self.query_weights is None:
            return self.prepare_texts(texts, prompt, truncate, direction, param=param)
        rows = self.tokenize(self.with_prompt(texts, prompt), add_special_tokens=False, truncation=True,
                             max_length=self.query_max_length, return_attention_mask=False,
                             return_token_type_ids=False)["input_ids"]
        return [QueryIds(list(ids)) for ids in rows]

    def sparse_bound(self, tokens: int) -> int:
        """Any vocabulary entry may be active, whatever the text: the vocabulary, or max_active_dims."""
        return min(self.sparse_dimension, self.max_active_dims or self.sparse_dimension)

    def info(self) -> dict:
        data = super().info()
        data.update(outputs=["sparse"], sparse_dimension=self.sparse_dimension, pooling=f"splade-{self.pooling_strategy}")
        return data

    def _pooled(self, hidden: Sequence[torch.Tensor]) -> torch.Tensor:
        """(inputs, vocabulary) float32: SPLADE pooling of each input's (tokens, hidden) states. The
        real tokens of all inputs go through the head together, LOGIT_VALUES // vocabulary rows at a
        time; each input's rows (contiguous) fold into its own row (max, or sum)."""
        flat = torch.cat(list(hidden)) if len(hidden) > 1 else hidden[0]
        ends = torch.tensor([h.shape[0] for h in hidden]).cumsum(0).tolist()
        pooled = torch.zeros(len(hidden), self.sparse_dimension, dtype=torch.float32, device=flat.device)
        rows = max(1, LOGIT_VALUES // self.sparse_dimension)
        first = 0  # the first input with rows in this slice
        for start in range(0, flat.shape[0], rows):
            stop = min(start + rows, flat.shape[0])
            values = torch.log1p(torch.relu(self.head(flat[start:stop]).float()))
            if self.activation == "log1p_relu":
                values = torch.log1p(values)
            item = first
            while item < len(ends) and (ends[item - 1] if item else 0) < stop:
                lo, hi = max(ends[item - 1] if item else 0, start) - start, min(ends[item], stop) - start
                if hi > lo:
                    part = values[lo:hi]
                    if self.pooling_strategy == "max":  # values >= 0: the zeros it starts from change nothing
                        torch.maximum(pooled[item], part.max(dim=0).values, out=pooled[item])
                    else:
                        pooled[item] += part.sum(dim=0)
                if ends[item] > stop:
                    break
                item += 1
            first = item
        return pooled

    def lexical_weights(self, items: Sequence[TokenIds]) -> list[SparseVector]:
        queries = [i for i, item in enumerate(items) if isinstance(item, QueryIds)]
        rows: list[Any] = [None] * len(items)
        for i in queries:  # the static weight of each distinct token id
            row = np.zeros(self.sparse_dimension, dtype=np.float32)
            ids = np.unique(np.asarray(items[i].ids, dtype=np.int64))
            row[ids] = self.query_weights[ids]
            rows[i] = row
        others = [i for i in range(len(items)) if rows[i] is None]
        if others:
            with torch.inference_mode():
                pooled = self._pooled(self.token_hidden([items[i] for i in others])).cpu().numpy()
            for i, row in zip(others, pooled):
                rows[i] = row
        if self.max_active_dims is not None:
            for row in rows:
                if np.count_nonzero(row) > self.max_active_dims:
                    row[np.argsort(row)[: -self.max_active_dims]] = 0.0
        return [sparse_from_dense(row) for row in rows]

    def warmup(self) -> None:
        super().warmup()
        with self.lock:
            self.lexical_weights(self.prepare_texts(["warm-up"], PromptChoice(), True, "right"))
