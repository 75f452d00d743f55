"""Sequence classifiers with several labels: sentiment, emotions, NLI, prompt-injection guards.

Recipe: transformers' text-classification pipeline with `top_k=None`: the text (or the pair, for
NLI: `{"text", "text_pair"}`) tokenised as the model's tokenizer does, one forward pass of
`AutoModelForSequenceClassification`, then softmax over the labels, or sigmoid per label for
`problem_type: multi_label_classification` (the pipeline's `function_to_apply`); raw scores are
the logits. Labels are the model's `id2label`. Here a text longer than the model's window is cut
(longest first for a pair, on the request's side) or, without truncation, refused.
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch

from ..config.model_specs import ModelSpec
from ..domain.errors import Unprocessable
from .files import ModelFiles
from .interfaces import Classifier
from .items import PairItem, pad_batch
from .loading import load_pretrained, pad_token_id
from .text_config import files_max_length
from .unpadded import packed_classifier

#: One input: a text, or a pair of texts (NLI).
ClassifierInput = Union[str, tuple[str, str]]


def labelled_head(model: torch.nn.Module) -> tuple[list[str], bool]:
    """(labels in id2label order, whether it is multi-label: sigmoid per label) of a loaded
    transformers classification model (sequence or token)."""
    config = model.config
    labels = [str(config.id2label.get(i, f"LABEL_{i}")) for i in range(int(config.num_labels))]
    return labels, getattr(config, "problem_type", None) == "multi_label_classification"


class SequenceClassifier(Classifier):
    """`AutoModelForSequenceClassification` with its `id2label`; `forward` gives (batch, labels)
    float32 logits."""

    def __init__(self, spec: ModelSpec, device: str, dtype: str, files: ModelFiles, config: dict):
        super().__init__(spec, device)
        tokenizer, self.model, self.dtype = load_pretrained(spec, device, dtype, "AutoModelForSequenceClassification")
        self.set_tokenizer(tokenizer)
        model_config = self.model.config
        self.labels, self.multi_label = labelled_head(self.model)
        self.max_length = files_max_length(spec, files, self.tokenizer, config)
        self.pad_id = pad_token_id(self.tokenizer)
        self.uses_type_ids = "token_type_ids" in getattr(self.tokenizer, "model_input_names", ()) and (
            int(getattr(model_config, "type_vocab_size", 1) or 1) > 1
        )
        self.dimension = len(self.labels)
        self._packed = packed_classifier(self.model) if spec.option("unpadded", True) and device == "cpu" else None
        self.unpadded = self._packed is not None

    def info(self) -> dict:
        data = super().info()
        data.update(labels=self.labels, id2label={str(i): label for i, label in enumerate(self.labels)},
                    score="sigmoid per label" if self.multi_label else "softmax")
        return data

    def prepare_inputs(
        self, inputs: Sequence[ClassifierInput], truncate: bool, direction: str, param: str = "inputs",
    ) -> list[PairItem]:
        items = []
        for index, value in enumerate(inputs):
            first, second = (value, None) if isinstance(value, str) else value
            encoded = self.tokenize(first, second, truncation=truncate, max_length=self.max_length if truncate else None,
                                    side=direction, return_attention_mask=False, return_token_type_ids=True)
            ids = list(encoded["input_ids"])
            if len(ids) > self.max_length:
                raise Unprocessable(
                    f"{param}[{index}] has {len(ids)} tokens; model {self.name!r} accepts at most {self.max_length} "
                    "(send truncate: true to cut it)", param=param,
                )
            types = list(encoded["token_type_ids"]) if self.uses_type_ids and "token_type_ids" in encoded else None
            items.append(PairItem(ids, index, types))
        return items

    def forward(self, items: Sequence[PairItem]) -> np.ndarray:
        with torch.inference_mode():
            if self._packed is not None:
                batch = self._packed.encoder.pack([item.ids for item in items],
                                                  [item.type_ids for item in items] if self.uses_type_ids else None,
                                                  device=self.device)
                return self._packed(batch).float().cpu().numpy()
            ids, mask = pad_batch([item.ids for item in items], self.pad_id, left=False)
            kwargs = {"input_ids": torch.from_numpy(ids).to(self.device), "attention_mask": torch.from_numpy(mask).to(self.device)}
            if self.uses_type_ids:
                types = np.zeros_like(ids)
                for row, item in enumerate(items):
                    if item.type_ids is not None:
                        types[row, : len(item)] = item.type_ids
                kwargs["token_type_ids"] = torch.from_numpy(types).to(self.device)
            return self.model(**kwargs).logits.float().cpu().numpy()

    def warmup(self) -> None:
        with self.lock:
            self.forward(self.prepare_inputs(["warm-up"], True, "right"))
