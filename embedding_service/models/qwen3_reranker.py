"""Causal-LM rerankers in the Qwen3-Reranker style: the model answers "yes" or "no".

Recipe (Qwen/Qwen3-Reranker-0.6B model card): the pair is formatted as
`<Instruct>: {instruction}\\n<Query>: {query}\\n<Document>: {doc}`, tokenised and cut to
`max_length - len(prefix) - len(suffix)`, wrapped in the official chat prefix and suffix, padded
on the left; score = softmax(logit_no, logit_yes)[yes] at the last position. We return the
log-odds logit_yes - logit_no, whose sigmoid is exactly that softmax.
"""

from __future__ import annotations

import inspect
from typing import Optional, Sequence

import numpy as np
import torch

from ..domain.errors import Unprocessable
from ..config.settings import SettingsError
from .interfaces import Reranker
from .unpadded_decoder import packed_decoder
from .items import PairItem, pad_batch
from .text_encoder import CHUNK_OVERLAP
from .text_config import files_max_length
from .files import ModelFiles
from .loading import load_pretrained, pad_token_id
from ..config.model_specs import ModelSpec

PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
PAIR_TEMPLATE = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"


class Qwen3Reranker(Reranker):
    """`AutoModelForCausalLM` scored on its next-token "yes" vs "no" logits."""

    takes_instruction = True

    def __init__(self, spec: ModelSpec, device: str, dtype: str, files: ModelFiles, config: dict):
        super().__init__(spec, device)
        tokenizer, self.model, self.dtype = load_pretrained(spec, device, dtype, "AutoModelForCausalLM")
        self.set_tokenizer(tokenizer)  # the recipe cuts the end of the formatted pair (side "right")
        vocab = self.tokenizer.get_vocab()
        if "yes" not in vocab or "no" not in vocab:
            raise SettingsError(f"model {spec.name!r}: its tokenizer has no 'yes'/'no' tokens; not a Qwen3-style reranker")
        self.yes_id, self.no_id = vocab["yes"], vocab["no"]
        self.prefix_ids = self.tokenize.ids(PREFIX)
        self.suffix_ids = self.tokenize.ids(SUFFIX)
        self.max_length = files_max_length(spec, files, self.tokenizer, config)
        self.body_length = self.max_length - len(self.prefix_ids) - len(self.suffix_ids)
        if self.body_length < 16:
            raise SettingsError(f"model {spec.name!r}: max_length {self.max_length} leaves no room for the pair")
        self.pad_id = pad_token_id(self.tokenizer)
        params = inspect.signature(self.model.forward).parameters
        self._logits_to_keep = "logits_to_keep" in params
        #: The packed forward (models/unpadded_decoder.py) of the Qwen3 body, unless turned off;
        #: the LM head then computes only the "yes" and "no" logits.
        base = getattr(self.model, "model", None)
        head = getattr(self.model, "lm_head", None)
        self._packed = None
        if spec.option("unpadded", True) and device == "cpu" and base is not None and head is not None and head.bias is None:
            self._packed = packed_decoder(base)
        self.unpadded = self._packed is not None
        self.dimension = 1

    def info(self) -> dict:
        data = super().info()
        data.update(default_instruction=DEFAULT_INSTRUCTION, score="softmax(no, yes)[yes]")
        return data

    def pair_chars(self, query: str, instruction: Optional[str]) -> int:
        """The formatted pair around the document: template, instruction (default included), query."""
        return len(PAIR_TEMPLATE.format(instruction=instruction or DEFAULT_INSTRUCTION, query=query, doc=""))

    def prepare_pairs(
        self, query: str, documents: Sequence[str], instruction: Optional[str], truncate: bool, max_chunks: Optional[int]
    ) -> list[PairItem]:
        instruction = instruction or DEFAULT_INSTRUCTION
        if max_chunks:
            return self._chunked(query, documents, instruction, max_chunks)
        texts = [PAIR_TEMPLATE.format(instruction=instruction, query=query, doc=doc) for doc in documents]
        if not truncate:
            full = self.tokenize(texts, return_attention_mask=False)["input_ids"]
            for index, ids in enumerate(full):
                if len(ids) > self.body_length:
                    raise Unprocessable(
                        f"documents[{index}] with the query is {len(ids) + len(self.prefix_ids) + len(self.suffix_ids)} "
                        f"tokens; model {self.name!r} accepts at most {self.max_length} "
                        "(send truncate: true or max_chunks_per_doc)",
                        param="documents",
                    )
        # A long pair is tokenised only through a window whose first tokens are its own (models/tokenize.py).
        texts = self.tokenize.windows(texts, self.body_length - self.tokenize.specials, "right")
        encoded = self.tokenize(
            texts, truncation="longest_first", max_length=self.body_length, return_attention_mask=False
        )["input_ids"]
        return [PairItem(self.prefix_ids + list(ids) + self.suffix_ids, index) for index, ids in enumerate(encoded)]

    def _chunked(self, query: str, documents: Sequence[str], instruction: str, max_chunks: int) -> list[PairItem]:
        head = list(self.tokenize(PAIR_TEMPLATE.format(instruction=instruction, query=query, doc=""))["input_ids"])
        window = max(8, self.body_length - len(head))
        step = max(1, window - int(window * CHUNK_OVERLAP))
        # Tokens of a document past the last chunk's end never reach the model: tokenise up to there.
        needed = (max_chunks - 1) * step + window + 1
        cut = self.tokenize.windows(documents, needed, "right")
        rows = self.tokenize(cut, add_special_tokens=False, return_attention_mask=False)["input_ids"] if cut else []
        items = []
        for index, (doc, part, ids) in enumerate(zip(documents, cut, rows)):
            doc_ids = list(ids) if len(part) == len(doc) else list(ids[:needed])
            starts = range(0, max(1, len(doc_ids) - window + step), step) if len(doc_ids) > window else [0]
            for start in list(starts)[:max_chunks]:
                body = (head + doc_ids[start : start + window])[: self.body_length]
                items.append(PairItem(self.prefix_ids + body + self.suffix_ids, index))
        return items

    def forward(self, items: Sequence[PairItem]) -> np.ndarray:
        if self._packed is not None:
            with torch.inference_mode():
                batch = self._packed.pack([item.ids for item in items], device=self.device)
                last = self._packed(batch).index_select(0, batch.offsets[1:] - 1)  # each pair's last token
                head = self.model.lm_head.weight[[self.yes_id, self.no_id]]  # only the two logits read
                logits = (last @ head.T.to(last.dtype)).float()
            return (logits[:, 0] - logits[:, 1]).unsqueeze(1).cpu().numpy()
        ids, mask = pad_batch([item.ids for item in items], self.pad_id, left=True)
        attention = torch.from_numpy(mask).to(self.device)
        kwargs = {
            "input_ids": torch.from_numpy(ids).to(self.device),
            "attention_mask": attention,
            "position_ids": (attention.cumsum(dim=1) - 1).clamp(min=0),
        }
        if self._logits_to_keep:
            kwargs["logits_to_keep"] = 1
        with torch.inference_mode():
            logits = self.model(**kwargs).logits[:, -1, :].float()
        return (logits[:, self.yes_id] - logits[:, self.no_id]).unsqueeze(1).cpu().numpy()

    def warmup(self) -> None:
        with self.lock:
            self.forward(self.prepare_pairs("warm-up", ["warm-up"], None, True, None))
