"""The small model interface every model family implements.

A request never calls a model directly. It asks the model to *prepare* its inputs (tokenise,
decode images: cheap, outside any lock, on the request thread), hands the prepared items to the
model's batcher, and the batcher calls *forward* on a batch of prepared items, one forward pass at a
time under the model's inference lock. Post-processing (Matryoshka `dimensions`, L2 normalisation)
happens back on the request thread, in `embedding_service.service`.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import torch

from .spec import ModelSpec


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


DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_dtype(requested: str, device: str) -> torch.dtype:
    """`auto` is float32 on CPU and float16 on CUDA; explicit names are honoured."""
    if requested == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    return DTYPES[requested]


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


class Model(ABC):
    """A loaded model of one `kind`, on one `device`.

    Attributes: `spec` (its configuration), `name`, `aliases`, `kind`, `device`, `dtype`,
    `dimension` (output vector size), `max_length` (tokens per input), `load_seconds`, and `lock`,
    the inference lock held around every forward pass.
    """

    kind: str = ""

    def __init__(self, spec: ModelSpec, device: str):
        self.spec = spec
        self.name = spec.name
        self.aliases = spec.aliases
        self.device = device
        self.dtype: torch.dtype = torch.float32
        self.dimension = 0
        self.max_length = 0
        self.load_seconds = 0.0
        self.lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        """Public description for /info and /v1/models (no server paths)."""
        return {
            "id": self.name,
            "aliases": list(self.aliases),
            "kind": self.kind,
            "dimension": self.dimension,
            "max_input_length": self.max_length,
            "dtype": dtype_name(self.dtype),
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
    """A model that embeds text (text models, and the text tower of multimodal models)."""

    @abstractmethod
    def prepare_texts(
        self, texts: Sequence[str], prompt: PromptChoice, truncate: bool, direction: str
    ) -> list[Tokens]:
        """Apply the prompt and tokenise; over-long inputs are cut on `direction` ("left" or
        "right") when `truncate`, else raise Unprocessable (422) naming the input and the limit.
        raises BadRequest (400) for an unknown prompt name or input type."""

    @abstractmethod
    def prepare_ids(self, ids: Sequence[Sequence[int]], truncate: bool, direction: str) -> list[Tokens]:
        """Token-id inputs, fed as given (no special tokens added); raises BadRequest (400) for ids
        outside the vocabulary, Unprocessable (422) for over-long inputs without truncation."""
