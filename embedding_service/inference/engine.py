"""One engine per served model: the model, its batcher, its metrics observer and its CPU share,
all given at construction, and the operations the API dialects need.

Request threads call an engine's operations; each prepares its inputs on the calling thread
(tokenising is thread-safe and lock-free), queues them on the engine's batcher and waits for the
forward passes. What an engine can do is its set of :class:`Capability`; the registry looks
engines up by capability.
"""

from __future__ import annotations

import enum
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from .batch_plan import BatchBounds
from .results import Chunks, Encoded, PairScores, best_per_owner
from .batching import Batcher
from ..observability.request_stats import timed
from ..domain.errors import InvalidInput
from ..models.interfaces import (
    Classifier, ImageEncoder, Model, MultiVectorEncoder, Reranker, SparseEncoder, TokenClassifier, TokenStates,
)
from ..models.prompts import PromptChoice, ResolvedPrompt

#: A request's prompt: as asked, or already resolved against the model (then not resolved again).
Prompt = Union[PromptChoice, ResolvedPrompt]
from ..models.text_encoder import TextEncoder
from .vector_cache import VectorCache, cache_key, cache_mode, through_cache


class Capability(enum.Enum):
    """What a request needs from a model; the value names it in error messages."""

    EMBED_TEXT = "text embeddings"
    EMBED_IMAGES = "image embeddings"
    SCORE_PAIRS = "reranking"
    TOKEN_STATES = "token embeddings"
    SPARSE = "sparse embeddings"
    MULTI_VECTOR = "multi-vector embeddings"
    CLASSIFY = "classification"
    TOKEN_CLASSIFY = "token classification"


def capabilities_of(model: Model) -> frozenset[Capability]:
    """From the interfaces the model implements: TextEncoder (text embeddings where it serves
    them: `serves_dense`), ImageEncoder, Reranker, TokenStates, SparseEncoder, MultiVectorEncoder,
    Classifier, TokenClassifier."""
    found = set()
    if isinstance(model, TextEncoder) and model.serves_dense:
        found.add(Capability.EMBED_TEXT)
    if isinstance(model, SparseEncoder):
        found.add(Capability.SPARSE)
    if isinstance(model, MultiVectorEncoder):
        found.add(Capability.MULTI_VECTOR)
    if isinstance(model, Classifier):
        found.add(Capability.CLASSIFY)
    if isinstance(model, TokenClassifier):
        found.add(Capability.TOKEN_CLASSIFY)
    if isinstance(model, ImageEncoder):
        found.add(Capability.EMBED_IMAGES)
    if isinstance(model, Reranker):
        found.add(Capability.SCORE_PAIRS)
    if isinstance(model, TokenStates) and model.serves_dense:
        found.add(Capability.TOKEN_STATES)
    return frozenset(found)


class Engine:
    """A served model with its own batcher. `observer` (metrics.BatchObserver) and `cpu_share`
    (cpu_share.SlotShare) are required: pass None explicitly for none."""

    def __init__(self, model: Model, limits: BatchBounds, *, observer: Optional[Any], cpu_share: Optional[Any],
                 load_seconds: float = 0.0, cache: Optional[VectorCache] = None):
        self.model = model
        #: The worker's vector cache (vector_cache.py), or None.
        self.cache = cache
        self.name = model.name
        self.aliases = model.aliases
        self.capabilities = capabilities_of(model)
        self.batcher = Batcher(model, limits, observer=observer, cpu_share=cpu_share)
        #: Seconds it took to load and warm the model.
        self.load_seconds = load_seconds
        self._text = model if isinstance(model, TextEncoder) else None
        self._images = model if isinstance(model, ImageEncoder) else None
        self._pairs = model if isinstance(model, Reranker) else None

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    @property
    def text_encoder(self) -> TextEncoder:
        """The model as a text encoder; raises InvalidInput (400) when it cannot embed text."""
        if self._text is None:
            raise InvalidInput(f"model {self.name!r} is a {self.model.kind} model and cannot do text embeddings", param="model")
        return self._text

    @property
    def image_encoder(self) -> ImageEncoder:
        """The model as an image encoder; raises InvalidInput (400) when it cannot embed images."""
        if self._images is None:
            raise InvalidInput(f"model {self.name!r} is a {self.model.kind} model and cannot do image embeddings", param="model")
        return self._images

    @property
    def reranker(self) -> Reranker:
        """The model as a pair scorer; raises InvalidInput (400) when it cannot score pairs."""
        if self._pairs is None:
            raise InvalidInput(f"model {self.name!r} is a {self.model.kind} model and cannot score pairs", param="model")
        return self._pairs

    @property
    def classifier(self) -> Any:
        """The model as a classifier; raises InvalidInput (400) when it does not classify."""
        if not self.can(Capability.CLASSIFY):
            raise InvalidInput(f"model {self.name!r} is a {self.model.kind} model and cannot do classification", param="model")
        return self.model

    def info(self) -> dict:
        return self.model.info()

    # ---------------------------------------------------------------- operations
    def prepare_texts(
        self, texts: Sequence[str], prompt: Prompt, truncate: bool, direction: str, param: str = "input"
    ) -> list:
        """Texts with the prompt applied, tokenised with the model's truncation on `direction`,
        not yet queued (:meth:`encode`). raises InvalidInput (400: prompt), Unprocessable (422:
        over-long with `truncate` false)."""
        with timed("tokenization"):
            return self.text_encoder.prepare_texts(texts, prompt, truncate, direction, param=param)

    def encode(self, items: Sequence[Any], owners: Optional[list[int]] = None) -> Encoded:
        """Prepared items through the batcher, their fit to the queue checked as they are queued:
        raises LimitExceeded (413: more items than the queue holds), Unavailable (503: not now)."""
        lengths = [len(item) for item in items]  # measured once: batching, metrics and usage
        return Encoded(self.batcher.run(items, lengths), sum(lengths), owners)

    def embed_texts(
        self, texts: Sequence[str], prompt: Prompt, truncate: bool, direction: str, param: str = "input"
    ) -> Encoded:
        """:meth:`prepare_texts`, then :meth:`encode`, for the texts the vector cache does not hold
        (all of them without one); raises what both raise."""
        if self.cache is None or cache_mode.get() == "bypass":
            return self.encode(self.prepare_texts(texts, prompt, truncate, direction, param))
        resolved = prompt if isinstance(prompt, ResolvedPrompt) else self.text_encoder.prompt_for(prompt)
        precision = self.model.precision or str(self.model.dtype)
        keys = [cache_key(self.name, precision, resolved.prefix, truncate, direction, text) for text in texts]

        def compute(missing: list[int]) -> list:
            items = self.prepare_texts([texts[i] for i in missing], resolved, truncate, direction, param)
            return [(vector, len(item)) for vector, item in zip(self.encode(items).vectors, items)]

        found = through_cache(self.cache, self.name, keys, compute)
        return Encoded(np.stack([entry[0] for entry in found]), sum(entry[1] for entry in found))

    def embed_token_ids(self, ids: Sequence[Sequence[int]], truncate: bool, direction: str, param: str = "input") -> Encoded:
        """Pre-tokenised inputs, fed as given. raises InvalidInput (400: id outside the
        vocabulary), LimitExceeded (413: more inputs than the queue holds), Unprocessable (422:
        over-long with `truncate` false)."""
        with timed("tokenization"):
            items = self.text_encoder.prepare_ids(ids, truncate, direction, param=param)
        return self.encode(items)

    def prepare_chunks(
        self, texts: Sequence[str], prompt: Prompt, max_chunks: int, check: Optional[Callable[[int], None]] = None
    ) -> Chunks:
        """Each text as up to `max_chunks` overlapping windows, tokenised, not yet queued (see
        `embed_prepared`); `check` is called with the number of chunks (the caller's limit)."""
        with timed("tokenization"):
            items, owners = self.text_encoder.prepare_chunks(texts, prompt, max_chunks)
        if check is not None:
            check(len(items))
        self.batcher.check_fits(len(items))
        return Chunks(items, owners)

    def embed_prepared(self, chunks: Chunks) -> Encoded:
        """The vectors of chunks from `prepare_chunks`; `owners` maps rows to texts."""
        return self.encode(chunks.items, chunks.owners)

    def embed_chunks(
        self, texts: Sequence[str], prompt: Prompt, max_chunks: int, check: Optional[Callable[[int], None]] = None
    ) -> Encoded:
        """Each text as up to `max_chunks` overlapping windows; `owners` maps rows to texts.
        `check` is called with the number of chunks before any is queued (the caller's limit)."""
        return self.embed_prepared(self.prepare_chunks(texts, prompt, max_chunks, check))

    def lexical_weights(
        self, texts: Sequence[str], prompt: Prompt, truncate: bool, direction: str, param: str = "input",
        is_query: bool = False,
    ) -> tuple[list, int]:
        """(one SparseVector per text, tokens fed): the model's lexical weights through the
        batcher, queries or documents as the family prepares them. raises what
        :meth:`prepare_texts` and :meth:`encode` raise, and InvalidInput (400) for a model without
        sparse output."""
        self._require(Capability.SPARSE)
        with timed("tokenization"):
            items = self._any.prepare_sparse(texts, prompt, truncate, direction, is_query, param=param)
        return self.run_output(items, "lexical_weights")

    def token_vectors(
        self, texts: Sequence[str], prompt: Prompt, truncate: bool, direction: str, is_query: bool, param: str = "input"
    ) -> tuple[list[np.ndarray], int]:
        """(one (vectors, dim) float32 array per text, not normalised; tokens fed): the model's
        multi-vector output through the batcher, queries or documents as the family prepares
        them. raises as :meth:`lexical_weights` does."""
        self._require(Capability.MULTI_VECTOR)
        with timed("tokenization"):
            items = self._any.prepare_multi_vector(texts, prompt, truncate, direction, is_query, param=param)
        return self.run_output(items, "token_vectors")

    def token_logits(
        self, texts: Sequence[str], truncate: bool, direction: str, param: str = "input",
    ) -> tuple[list[np.ndarray], int]:
        """(one (tokens, labels) float32 array of logits per text; tokens fed): a token
        classifier's output through the batcher. raises what `prepare_inputs` and :meth:`encode`
        raise, and InvalidInput (400) for a model that does not classify tokens."""
        self._require(Capability.TOKEN_CLASSIFY)
        with timed("tokenization"):
            items = self._any.prepare_inputs(texts, truncate, direction, param=param)
        return self.run_output(items, "token_logits")

    def run_output(self, items: Sequence[Any], output: str) -> tuple[list, int]:
        """(one result per prepared item, tokens fed): the model's batched `output` (a method
        named in `Model.batched_outputs`) through the batcher; raises what :meth:`encode` raises."""
        lengths = [len(item) for item in items]
        return self.batcher.run(items, lengths, output=output), sum(lengths)

    def _require(self, capability: Capability) -> None:
        """raises InvalidInput (400) naming `model` when the model lacks `capability`."""
        if not self.can(capability):
            raise InvalidInput(f"model {self.name!r} is a {self.model.kind} model and gives no {capability.value}", param="model")

    @property
    def _any(self) -> Any:
        """The model, for the family methods its interfaces declare (typed loosely)."""
        return self.model

    def embed_images(self, images: Sequence[Any]) -> Encoded:
        """RGB PIL images through the model's own image processor and image tower."""
        if self._images is None:
            raise InvalidInput(f"image documents need a multimodal model; {self.name!r} is a {self.model.kind} model", param="documents")
        with timed("tokenization"):
            items = self._images.prepare_images(images)
        return Encoded(self.batcher.run(items), 0)

    def score_pairs(
        self, query: str, documents: Sequence[str], instruction: Optional[str], truncate: bool, max_chunks: Optional[int],
        check: Optional[Callable[[int], None]] = None,
    ) -> PairScores:
        """Relevance log-odds of (query, document) for each document, by a reranker model; with
        `max_chunks`, a long document scores as its best chunk. `check` is called with the number
        of pairs or pair chunks before any is queued (the caller's limit). raises InvalidInput (400:
        an instruction for a model that takes none), Unprocessable (422: over-long, no truncation)."""
        model = self.reranker
        if instruction is not None and not model.takes_instruction:
            raise InvalidInput(f"model {self.name!r} is a cross-encoder and takes no instruction", param="instruction")
        with timed("tokenization"):
            items = model.prepare_pairs(query, documents, instruction, truncate, max_chunks)
        if check is not None:
            check(len(items))
        encoded = self.encode(items)
        best = best_per_owner(encoded.vectors[:, 0], [item.owner for item in items], len(documents))
        return PairScores(best, len(items), encoded.tokens)

    def cap_tokens(self, texts: list[str], limit: Optional[int], side: str = "right") -> list[str]:
        """Each text cut to its first `limit` tokens (Cohere's `max_tokens_per_doc` and
        `max_tokens`), or its last with `side` "left", special tokens not counted. The cut falls on
        a token boundary of the text itself, read from the tokenizer's character offsets: the kept
        part is never decoded back to text (decoding can change it: lower-casing, spaces around
        punctuation). A long text is tokenised only as far as a window of it that gives the same
        kept tokens (a prefix on the right, a suffix on the left)."""
        if not limit or not texts:
            return texts
        tokenize = self.model.tokenize
        windows = tokenize.windows(texts, limit, side)
        rows = tokenize(windows, add_special_tokens=False, return_offsets_mapping=True, return_attention_mask=False,
                        return_token_type_ids=False)["offset_mapping"]
        out = []
        for text, window, offsets in zip(texts, windows, rows):
            if len(offsets) <= limit:
                out.append(text)  # short: the window is the text itself
            elif side == "left":
                out.append(window[offsets[-limit][0]:])
            else:
                out.append(window[:offsets[limit - 1][1]])
        return out
