"""The small model interface every model family implements.

A request never calls a model directly. It asks the model to *prepare* its inputs (tokenise,
decode images: cheap, outside any lock, on the request thread), hands the prepared items to the
model's batcher, and the batcher calls *forward* on a batch of prepared items, one forward pass at a
time under the model's inference lock. Post-processing (Matryoshka `dimensions`, L2 normalisation)
happens back on the request thread, in `embedding_service.operations.embed`.

What a model can do is the interface it implements: :class:`TextEncoder` (text embeddings),
:class:`ImageEncoder` (image embeddings), :class:`Reranker` (pair scores). Which class serves a
given checkpoint is decided by the family table (`models/families.py`).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import torch

from ..domain.errors import InvalidInput, Unprocessable
from .loading import dtype_name
from ..config.model_specs import ModelSpec
from .tokenize import ConcurrentTokenizer

#: Overlap between neighbouring chunks of a long document, as a fraction of the model's window.
CHUNK_OVERLAP = 0.25


@dataclass
class Tokens:
    """One tokenised input: `ids` exactly as fed to the model (special tokens included)."""

    ids: list[int]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class PromptChoice:
    """What the request asked for: a named prompt, an input type, or a free instruction."""

    prompt_name: Optional[str] = None
    input_type: Optional[str] = None
    instruction: Optional[str] = None


def pad_batch(
    rows: Sequence[Sequence[int]], pad_id: int, left: bool, length: Optional[int] = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pad token rows to `length` (default: the longest) on the left or the right.

    Returns (ids, mask), both (len(rows), length) int64; mask is 1 on real tokens.
    """
    width = length or max(len(row) for row in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for index, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[index, span] = row
        mask[index, span] = 1
    return ids, mask


class Model(ABC):
    """A loaded model on one `device`.

    Attributes: `spec` (its configuration), `name`, `aliases`, `family` (its row of the family
    table, set by the loader), `device`, `dtype`, `dimension` (output vector size), `max_length`
    (tokens per input), `lock`, the inference lock held around every forward pass, and `model`,
    the loaded torch module. Set at load (registry.py): `precision`, the DTYPE it serves in
    (precision.py), and `cpu_kernels`, the library of its float32 linear layers (acceleration.py).
    """

    model: torch.nn.Module
    family: Any = None
    #: The fast tokenizer as loaded (vocabulary, decoding) and its thread-safe caller.
    tokenizer: Any = None
    tokenize: ConcurrentTokenizer

    def __init__(self, spec: ModelSpec, device: str):
        self.spec = spec
        self.name = spec.name
        self.aliases = spec.aliases
        self.device = device
        self.dtype: torch.dtype = torch.float32
        self.dimension = 0
        self.max_length = 0
        self.lock = threading.Lock()
        self.precision = ""
        self.cpu_kernels = ""

    def set_tokenizer(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.tokenize = ConcurrentTokenizer(tokenizer)

    @property
    def kind(self) -> str:
        """The family's kind label: `text`, `multimodal` or `rerank` (shown in /info, /v1/models)."""
        return self.family.kind if self.family is not None else ""

    def info(self) -> dict[str, Any]:
        """Public description for /info and /v1/models (no server paths)."""
        return {
            "id": self.name,
            "aliases": list(self.aliases),
            "kind": self.kind,
            "family": self.family.name if self.family is not None else None,
            "dimension": self.dimension,
            "max_input_length": self.max_length,
            "dtype": dtype_name(self.dtype),
            "precision": self.precision or dtype_name(self.dtype),
            "cpu_kernels": self.cpu_kernels or None,
            "device": self.device,
        }

    @abstractmethod
    def forward(self, items: Sequence[Any]) -> np.ndarray:
        """Run one forward pass over prepared items; caller holds `lock`.

        Returns (len(items), dimension) float32, pooled and not normalised.
        """

    def warmup(self) -> None:
        """Run one tiny forward pass so the first request does not pay for lazy initialisation."""


class TextEncoder(Model):
    """A model that embeds text (text models, and the text tower of multimodal models).

    Subclasses call `set_tokenizer` with a fast tokenizer and set `max_length`,
    `vocab_rows` and the prompt attributes below in their constructor; preparing inputs is shared
    and thread-safe without a lock (models/tokenize.py).
    """

    vocab_rows: int = 0
    prompts: dict = {}
    default_prompt_name: Optional[str] = None
    instruction_template: Optional[str] = None
    lowercase: bool = False

    def resolve_prompt(self, choice: PromptChoice) -> str:
        """The prefix for this request, from `prompt_name`, `instruction` or `input_type`.

        Follows sentence-transformers: the named prompt is prepended; with no choice the model's
        `default_prompt_name` applies. For instruction models the instruction fills
        `instruction_template`; for others it is prepended as given. `input_type` selects the
        prompt of that name when the model has one. raises InvalidInput (400) naming the field.
        """
        if choice.prompt_name is not None:
            if choice.instruction is not None:
                raise InvalidInput("send either prompt_name or instruction, not both", param="prompt_name")
            if choice.prompt_name not in self.prompts:
                known = ", ".join(sorted(self.prompts)) or "none"
                raise InvalidInput(
                    f"model {self.name!r} has no prompt named {choice.prompt_name!r}; its prompts: {known}",
                    param="prompt_name",
                )
            return self.prompts[choice.prompt_name]
        if choice.instruction is not None:
            if choice.input_type == "document":
                raise InvalidInput("an instruction applies to queries; drop it for input_type document", param="instruction")
            if self.instruction_template:
                return self.instruction_template.replace("{instruction}", choice.instruction)
            return choice.instruction
        if choice.input_type is not None:
            return self.prompts.get(choice.input_type, "")
        if self.default_prompt_name:
            return self.prompts[self.default_prompt_name]
        return ""

    def _with_prompt(self, texts: Sequence[str], prompt: PromptChoice) -> list[str]:
        prefix = self.resolve_prompt(prompt)
        inputs = [prefix + text for text in texts] if prefix else list(texts)
        return [text.lower() for text in inputs] if self.lowercase else inputs

    def prepare_texts(
        self, texts: Sequence[str], prompt: PromptChoice, truncate: bool, direction: str, param: str = "input"
    ) -> list[Tokens]:
        """Apply the prompt (and lower-casing where the model wants it) and tokenise with the
        tokenizer's own truncation at `max_length` on `direction` ("left" or "right"). With
        `truncate`, a long text is tokenised through a window of it that gives the same tokens
        (`ConcurrentTokenizer.windows`), so its cost does not grow with its length.

        Without `truncate` an over-long input raises Unprocessable (422) naming it and the limit;
        an unknown prompt raises InvalidInput (400).
        """
        inputs = self._with_prompt(texts, prompt)
        if truncate:
            inputs = self.tokenize.windows(inputs, self.max_length - self.tokenize.specials, direction)
        encoded = self.tokenize.encode_ids(
            inputs, truncation=truncate, max_length=self.max_length if truncate else None, side=direction
        )
        items = [Tokens(ids) for ids in encoded]
        if not truncate:
            self._check_lengths(items, param)
        return items

    def prepare_chunks(
        self, texts: Sequence[str], prompt: PromptChoice, max_chunks: int, param: str = "documents"
    ) -> tuple[list[Tokens], list[int]]:
        """Tokenise with the tokenizer's own overflow windows: a text longer than `max_length`
        becomes up to `max_chunks` windows overlapping by CHUNK_OVERLAP of the window, each with
        the model's special tokens. Returns the items and, for each, the index of its text. Only
        the part of a text that `max_chunks` windows can hold is tokenised
        (`ConcurrentTokenizer.windows`, with `max_chunks * max_length` tokens kept)."""
        inputs = self.tokenize.windows(self._with_prompt(texts, prompt), max_chunks * self.max_length, "right")
        encoded = self.tokenize(
            inputs,
            truncation=True,
            max_length=self.max_length,
            stride=int(self.max_length * CHUNK_OVERLAP),
            return_overflowing_tokens=True,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        items, owners, seen = [], [], {}
        for ids, owner in zip(encoded["input_ids"], encoded["overflow_to_sample_mapping"]):
            seen[owner] = seen.get(owner, 0) + 1
            if seen[owner] <= max_chunks:
                items.append(Tokens(list(ids)))
                owners.append(int(owner))
        return items, owners

    def prepare_ids(
        self, ids: Sequence[Sequence[int]], truncate: bool, direction: str, param: str = "input"
    ) -> list[Tokens]:
        """Token-id inputs, fed as given (no special tokens added); raises InvalidInput (400) for ids
        outside the vocabulary, Unprocessable (422) for over-long inputs without truncation."""
        items = []
        for index, row in enumerate(ids):
            bad = next((t for t in row if not 0 <= t < self.vocab_rows), None)
            if bad is not None:
                raise InvalidInput(
                    f"{param}[{index}]: token id {bad} is outside the vocabulary of model {self.name!r} "
                    f"(0..{self.vocab_rows - 1})",
                    param=param,
                )
            row = list(row)
            if len(row) > self.max_length and truncate:
                row = row[-self.max_length :] if direction == "left" else row[: self.max_length]
            items.append(Tokens(row))
        if not truncate:
            self._check_lengths(items, param)
        return items

    def _check_lengths(self, items: Sequence[Tokens], param: str) -> None:
        for index, item in enumerate(items):
            if len(item) > self.max_length:
                raise Unprocessable(
                    f"{param}[{index}] has {len(item)} tokens; model {self.name!r} accepts at most "
                    f"{self.max_length} (send truncate: true to cut it)",
                    param=param,
                )


@dataclass
class ImageItem:
    """One preprocessed image: the processor's arrays for it (numpy, batch dimension removed:
    tensors are made on the compute thread, compute.py) and its number of patches, which counts
    as its length for batching."""

    tensors: dict
    patches: int

    def __len__(self) -> int:
        return self.patches


class ImageEncoder(ABC):
    """A model that embeds images (the image tower of multimodal models)."""

    @abstractmethod
    def prepare_images(self, images: Sequence[Any]) -> list[ImageItem]:
        """Run the model's own image processor on RGB PIL images, one ImageItem per image."""


@dataclass
class PairItem:
    """One tokenised (query, document) pair or pair chunk: `ids` as fed, segment `type_ids` for
    models that use them, and `owner`, the index of the document it scores."""

    ids: list[int]
    owner: int
    type_ids: Optional[list[int]] = None

    def __len__(self) -> int:
        return len(self.ids)


class Reranker(Model):
    """A (query, document) -> relevance model. `forward` returns (batch, 1) float32 log-odds of
    relevance, so relevance = sigmoid(raw) for every family (each family module names its recipe)."""

    #: Whether `instruction` means something to this model (Qwen3-Reranker) or is refused.
    takes_instruction = False

    def pair_chars(self, query: str, instruction: Optional[str]) -> int:
        """Characters the model sees with every document besides the document itself: the query
        (and, for models that take one, the instruction and the pair's template)."""
        return len(query)

    @abstractmethod
    def prepare_pairs(
        self,
        query: str,
        documents: Sequence[str],
        instruction: Optional[str],
        truncate: bool,
        max_chunks: Optional[int],
    ) -> list[PairItem]:
        """Tokenise each pair. Without `max_chunks` an over-long document is cut to fit (or, with
        `truncate` false, raises Unprocessable (422)); with it, a long document becomes up to
        `max_chunks` overlapping pair chunks sharing the document's `owner` index."""
