"""The small model interfaces every model family implements (the text encoder is text_encoder.py).

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
from typing import Any, Optional, Sequence

import numpy as np
import torch

from ..domain.errors import InvalidInput
from ..config.model_specs import ModelSpec
from ..images.decode import ImageInputSize
from .items import ImageItem, PairItem, SparseVector
from .loading import dtype_name
from .tokenize import ConcurrentTokenizer


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
    #: Whether a request's `instruction` means something to this model (text encoders prepend it
    #: or fill their template; Qwen3-Reranker reads it); when not, one is refused.
    takes_instruction = False
    #: Whether forward passes run on the real tokens of a batch only (models/unpadded.py): a
    #: batch then costs its tokens, not items x longest, and the batcher groups it accordingly.
    unpadded = False
    #: Whether it serves pooled text embeddings (`forward`'s rows); a SPLADE or PyLate model
    #: encodes text but serves only its sparse or multi-vector output.
    serves_dense = True
    #: Its batched outputs besides `forward` (method names the batcher may call; precision.py
    #: runs them in the model's precision too).
    batched_outputs: tuple[str, ...] = ()
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
            "unpadded": self.unpadded,
        }

    @abstractmethod
    def forward(self, items: Sequence[Any]) -> np.ndarray:
        """Run one forward pass over prepared items; caller holds `lock`.

        Returns (len(items), dimension) float32, pooled and not normalised.
        """

    def warmup(self) -> None:
        """Run one tiny forward pass so the first request does not pay for lazy initialisation."""


class TokenStates(ABC):
    """A text model that also gives its last hidden states per token, not pooled (TEI's
    `/embed_all`)."""

    @abstractmethod
    def token_states(self, items: Sequence[Any]) -> list[np.ndarray]:
        """One (len(item), hidden size) float32 array per item, a row per token fed (special
        tokens included, padding left out), not pooled nor normalised; a batched output (the
        batcher calls it on the compute thread, as it calls `forward`)."""


class SparseEncoder(ABC):
    """A model that gives lexical weights, one sparse vector over its vocabulary per text
    (SPLADE; BGE-M3's sparse head). `sparse_dimension`: its vocabulary size, the most entries
    one sparse vector can have."""

    sparse_dimension: int = 0

    def prepare_sparse(
        self, texts: Sequence[str], prompt: Any, truncate: bool, direction: str, is_query: bool, param: str = "input",
    ) -> list[Any]:
        """Text items for `lexical_weights`: the text encoder's own preparation, unless the family
        encodes queries another way (inference-free SPLADE)."""
        return self.prepare_texts(texts, prompt, truncate, direction, param=param)  # type: ignore[attr-defined]

    def sparse_bound(self, tokens: int) -> int:
        """The most entries a text of `tokens` tokens can have: one per token (BGE-M3), at most
        the vocabulary; SPLADE overrides it (any vocabulary entry, whatever the text)."""
        return min(tokens, self.sparse_dimension)

    @abstractmethod
    def lexical_weights(self, items: Sequence[Any]) -> list[SparseVector]:
        """One SparseVector per prepared text item; a batched output (the batcher calls it on
        the compute thread, as it calls `forward`)."""


class MultiVectorEncoder(ABC):
    """A late-interaction model: one vector per token (ColBERT: BGE-M3's ColBERT head, PyLate
    models), scored by MaxSim. `multi_vector_dimension`: the size of each token vector;
    `maxsim_average`: whether its MaxSim is divided by the query's vector count (FlagEmbedding's
    `colbert_score`) rather than summed (PyLate's `colbert_scores`)."""

    multi_vector_dimension: int = 0
    maxsim_average: bool = False

    def vectors_bound(self, tokens: int, is_query: bool) -> int:
        """The most values (vectors x dimension) a text of `tokens` tokens can give."""
        return tokens * self.multi_vector_dimension

    def prepare_multi_vector(
        self, texts: Sequence[str], prompt: Any, truncate: bool, direction: str, is_query: bool, param: str = "input",
    ) -> list[Any]:
        """Text items for `token_vectors`: the text encoder's own preparation, unless the family
        prepares queries and documents differently (PyLate)."""
        return self.prepare_texts(texts, prompt, truncate, direction, param=param)  # type: ignore[attr-defined]

    @abstractmethod
    def token_vectors(self, items: Sequence[Any]) -> list[np.ndarray]:
        """One (vectors, multi_vector_dimension) float32 array per prepared item, not normalised;
        a batched output."""


class Classifier(Model):
    """A text (or text-pair) classifier with several labels: `labels` in the model's id2label
    order, `multi_label` (sigmoid per label) or softmax. `forward` returns (batch, labels) float32
    logits."""

    labels: list[str] = []
    multi_label: bool = False

    @abstractmethod
    def prepare_inputs(self, inputs: Sequence[Any], truncate: bool, direction: str, param: str = "inputs") -> list[Any]:
        """Tokenise each input, a text or a (text, text) pair; an over-long one is cut on
        `direction`'s side or, with `truncate` false, raises Unprocessable (422)."""


class TokenClassifier(Model):
    """A per-token classifier (named entities, parts of speech): `labels` in the model's id2label
    order, `multi_label` (sigmoid per label) or softmax. It serves `token_logits` only (a batched
    output); `forward` is not served (`serves_dense` is false)."""

    labels: list[str] = []
    multi_label: bool = False
    serves_dense = False
    batched_outputs = ("token_logits",)

    @abstractmethod
    def prepare_inputs(self, texts: Sequence[str], truncate: bool, direction: str, param: str = "input") -> list[Any]:
        """Tokenise each text with the model's special tokens; an over-long one is cut on
        `direction`'s side or, with `truncate` false, raises Unprocessable (422)."""

    @abstractmethod
    def token_logits(self, items: Sequence[Any]) -> list[np.ndarray]:
        """One (tokens, labels) float32 array of logits per prepared item, a row per token fed
        (special tokens included, padding left out); a batched output."""

    def forward(self, items: Sequence[Any]) -> np.ndarray:
        """A token classifier gives no pooled rows: its answer is per token (`token_logits`).
        The engine never asks (it has no capability that needs them); raises InvalidInput (400)
        naming the model should a caller ask anyway."""
        raise InvalidInput(f"model {self.name!r} is a {self.kind} model and gives no pooled vectors; "
                           "ask /pooling with task token_classify", param="model")


class ImageEncoder(ABC):
    """A model that embeds images (the image tower of multimodal models)."""

    @property
    def image_input_size(self) -> Optional[ImageInputSize]:
        """The size the model's image processor resizes an image to, which the image loader
        shrinks large images toward as they decode; None when not known (a generic size is used)."""
        return None

    @abstractmethod
    def prepare_images(self, images: Sequence[Any]) -> list[ImageItem]:
        """Run the model's own image processor on RGB PIL images, one ImageItem per image."""


class Reranker(Model):
    """A (query, document) -> relevance model. `forward` returns (batch, 1) float32 log-odds of
    relevance, so relevance = sigmoid(raw) for every family (each family module names its recipe)."""

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
