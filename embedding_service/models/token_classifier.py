"""Token classifiers: named-entity recognisers, part-of-speech taggers (`*ForTokenClassification`).

Recipe: `AutoModelForTokenClassification` on the text tokenised with the model's special tokens,
one forward pass, the logits of every token fed (special tokens included, padding left out), then
softmax over the labels per token, or sigmoid per label for `problem_type:
multi_label_classification`, as vLLM's `token_classify` pooling task answers. transformers'
token-classification pipeline takes the same softmax per token (and then keeps each token's best
label). Labels are the model's `id2label`. A text longer than the model's window is cut on the
request's side or, without truncation, refused.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..config.model_specs import ModelSpec
from ..domain.errors import Unprocessable
from .files import ModelFiles
from .classifier import labelled_head
from .interfaces import TokenClassifier
from .items import PairItem, pad_batch
from .loading import load_pretrained, pad_token_id
from .text_config import files_max_length


class TokenClassifierModel(TokenClassifier):
    """`AutoModelForTokenClassification` with its `id2label`; `token_logits` gives one
    (tokens, labels) float32 array per text."""

    def __init__(self, spec: ModelSpec, device: str, dtype: str, files: ModelFiles, config: dict):
        super().__init__(spec, device)
        tokenizer, self.model, self.dtype = load_pretrained(spec, device, dtype, "AutoModelForTokenClassification")
        self.set_tokenizer(tokenizer)
        self.labels, self.multi_label = labelled_head(self.model)
        self.max_length = files_max_length(spec, files, self.tokenizer, config)
        self.pad_id = pad_token_id(self.tokenizer)
        self.dimension = len(self.labels)

    def info(self) -> dict:
        data = super().info()
        data.update(labels=self.labels, id2label={str(i): label for i, label in enumerate(self.labels)},
                    score="sigmoid per label" if self.multi_label else "softmax", per="token")
        return data

    def prepare_inputs(self, texts: Sequence[str], truncate: bool, direction: str, param: str = "input") -> list[PairItem]:
        items = []
        for index, text in enumerate(texts):
            encoded = self.tokenize(text, None, truncation=truncate, max_length=self.max_length if truncate else None,
                                    side=direction, return_attention_mask=False)
            ids = list(encoded["input_ids"])
            if len(ids) > self.max_length:
                raise Unprocessable(
                    f"{param}[{index}] has {len(ids)} tokens; model {self.name!r} accepts at most {self.max_length} "
                    "(send truncate: true to cut it)", param=param,
                )
            items.append(PairItem(ids, index))
        return items

    def token_logits(self, items: Sequence[PairItem]) -> list[np.ndarray]:
        with torch.inference_mode():
            ids, mask = pad_batch([item.ids for item in items], self.pad_id, left=False)
            logits = self.model(input_ids=torch.from_numpy(ids).to(self.device),
                                attention_mask=torch.from_numpy(mask).to(self.device)).logits.float().cpu().numpy()
        return [logits[row, : len(item)] for row, item in enumerate(items)]

    def warmup(self) -> None:
        with self.lock:
            self.token_logits(self.prepare_inputs(["warm-up"], True, "right"))
