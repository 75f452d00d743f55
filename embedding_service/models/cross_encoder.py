"""Sequence-classification cross-encoders (BERT, XLM-R such as bge-reranker-v2-m3, ms-marco
MiniLM) as rerankers.

Recipe: `sentence_transformers.CrossEncoder(path).predict(pairs)`: the pair tokenised together,
one forward pass of `AutoModelForSequenceClassification`; one label -> sigmoid(logit). Here the
query is kept whole and only the document is cut to fit (`only_second`), which equals
sentence-transformers' `longest_first` whenever the query takes at most half the window; a query
that alone fills the window is cut with the document, longest first. Only the start of a long
document that the model can use is tokenised. Two labels -> softmax(...)[1], returned as the
log-odds logit[1] - logit[0].
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from ..domain.errors import Unprocessable
from ..config.settings import SettingsError
from .interfaces import Reranker
from .items import PairItem, pad_batch
from .text_encoder import CHUNK_OVERLAP
from .text_config import files_max_length
from .files import ModelFiles
from .loading import load_pretrained, pad_token_id
from .unpadded import packed_classifier
from ..config.model_specs import ModelSpec


class CrossEncoderReranker(Reranker):
    """`AutoModelForSequenceClassification` with one or two labels."""

    def __init__(self, spec: ModelSpec, device: str, dtype: str, files: ModelFiles, config: dict):
        super().__init__(spec, device)
        tokenizer, self.model, self.dtype = load_pretrained(spec, device, dtype, "AutoModelForSequenceClassification")
        self.set_tokenizer(tokenizer)
        self.num_labels = int(self.model.config.num_labels)
        if self.num_labels not in (1, 2):
            raise SettingsError(f"model {spec.name!r}: a reranker needs 1 or 2 labels, it has {self.num_labels}")
        self.max_length = files_max_length(spec, files, self.tokenizer, config)
        self.pad_id = pad_token_id(self.tokenizer)
        # Segment ids only where the tokenizer produces them (BERT), as the recipe feeds them.
        self.uses_type_ids = "token_type_ids" in getattr(self.tokenizer, "model_input_names", ()) and (
            int(getattr(self.model.config, "type_vocab_size", 1) or 1) > 1
        )
        self.dimension = 1
        #: The packed forward (models/unpadded.py) for BERT-family classifiers, unless turned off.
        self._packed = packed_classifier(self.model) if spec.option("unpadded", True) and device == "cpu" else None
        self.unpadded = self._packed is not None

    def info(self) -> dict:
        data = super().info()
        data.update(num_labels=self.num_labels, score="sigmoid(logit)")
        return data

    def prepare_pairs(
        self, query: str, documents: Sequence[str], instruction: Optional[str], truncate: bool, max_chunks: Optional[int]
    ) -> list[PairItem]:
        queries = [query] * len(documents)
        if not truncate and not max_chunks:
            full = self.tokenize(queries, list(documents), return_attention_mask=False)["input_ids"]
            for index, ids in enumerate(full):
                if len(ids) > self.max_length:
                    raise Unprocessable(
                        f"documents[{index}] with the query is {len(ids)} tokens; model {self.name!r} accepts at "
                        f"most {self.max_length} (send truncate: true or max_chunks_per_doc)",
                        param="documents",
                    )
        query_ids = self.tokenize.ids(query)
        query_len = len(query_ids)
        if query_len >= self.max_length - self.tokenize.pair_specials:
            return self._longest_first(query_ids, documents)
        options = dict(max_length=self.max_length, return_attention_mask=False, return_token_type_ids=True)
        if max_chunks:
            window = max(1, self.max_length - query_len - 4)
            options.update(return_overflowing_tokens=True, stride=int(window * CHUNK_OVERLAP))
        # Only the part of a long document the model can use is tokenised: a window whose first
        # tokens are the document's (models/tokenize.py); `only_second` keeps at most max_length
        # document tokens per chunk.
        windows = self.tokenize.windows(documents, self.max_length * (max_chunks or 1), "right")
        try:
            encoded = self.tokenize(queries, windows, truncation="only_second", **options)
        except Exception:  # what the tokenizer refuses to cut that way is cut longest-first
            return self._longest_first(query_ids, documents)
        owners = encoded.get("overflow_to_sample_mapping") or list(range(len(windows)))
        items, per_owner = [], {}
        for row, owner in enumerate(owners):
            owner = int(owner)
            per_owner[owner] = per_owner.get(owner, 0) + 1
            if max_chunks and per_owner[owner] > max_chunks:
                continue
            type_ids = encoded["token_type_ids"][row] if self.uses_type_ids else None
            items.append(PairItem(list(encoded["input_ids"][row]), owner, list(type_ids) if type_ids else None))
        return items

    def _longest_first(self, query_ids: list[int], documents: Sequence[str]) -> list[PairItem]:
        """Pairs too long for `only_second` (the query alone fills the window), cut longest-first
        as the tokenizer cuts them (its rule, `longest_first`, on exact token counts) and wrapped
        in its special tokens (`ConcurrentTokenizer.pair`). Given the long texts themselves, the
        tokenizer would pair every overflowing piece of the query with every piece of the
        document: memory quadratic in their lengths."""
        budget = self.max_length - self.tokenize.pair_specials
        # Which of the two is longer decides which keeps the odd token: a document is tokenised
        # up to one token past the query (a window whose first tokens are its own).
        counted = self.tokenize.windows(documents, len(query_ids) + 1, "right")
        rows = self.tokenize(counted, add_special_tokens=False)["input_ids"] if counted else []
        items = []
        for index, row in enumerate(rows):
            keep_query, keep_document = longest_first(len(query_ids), len(row), budget)
            ids, type_ids = self.tokenize.pair(query_ids[:keep_query], list(row[:keep_document]))
            items.append(PairItem(ids, index, type_ids if self.uses_type_ids else None))
        return items

    def forward(self, items: Sequence[PairItem]) -> np.ndarray:
        if self._packed is not None:
            with torch.inference_mode():
                batch = self._packed.encoder.pack([item.ids for item in items],
                                                  [item.type_ids for item in items] if self.uses_type_ids else None,
                                                  device=self.device)
                logits = self._packed(batch).float()
            return self._relevance(logits)
        ids, mask = pad_batch([item.ids for item in items], self.pad_id, left=False)
        types = np.zeros_like(ids)
        for row, item in enumerate(items):
            if item.type_ids is not None:
                types[row, : len(item)] = item.type_ids
        kwargs = {
            "input_ids": torch.from_numpy(ids).to(self.device),
            "attention_mask": torch.from_numpy(mask).to(self.device),
        }
        if self.uses_type_ids:
            kwargs["token_type_ids"] = torch.from_numpy(types).to(self.device)
        with torch.inference_mode():
            logits = self.model(**kwargs).logits.float()
        return self._relevance(logits)

    def _relevance(self, logits: torch.Tensor) -> np.ndarray:
        """(batch, 1) float32 log-odds of relevance: the single logit, or label 1 against label 0."""
        raw = logits[:, :1] if self.num_labels == 1 else logits[:, 1:2] - logits[:, 0:1]
        return raw.cpu().numpy()

    def warmup(self) -> None:
        with self.lock:
            self.forward(self.prepare_pairs("warm-up", ["warm-up"], None, True, None))


def longest_first(first: int, second: int, budget: int) -> tuple[int, int]:
    """Tokens kept of each sequence of a pair of `first` and `second` tokens cut to `budget`
    longest-first: the rule of the tokenizers library (`truncate_encodings`), which keeps the
    shorter whole when it fits in half the budget and else gives each half, the longer one the
    odd token."""
    if first + second <= budget:
        return first, second
    swap = first > second
    short, long = (second, first) if swap else (first, second)
    long = short if short > budget else max(short, budget - short)
    if short + long > budget:
        short, long = budget // 2, budget // 2 + budget % 2
    return (long, short) if swap else (short, long)
