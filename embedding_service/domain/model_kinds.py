"""What a served model can be, as users name it: its kind and, for text embedders, its pooling.

A leaf module: the model specs (config/), the family table (models/families.py) and the
descriptions (http/openapi) all read these names from here.
"""

from __future__ import annotations

from enum import Enum


class Kind(str, Enum):
    """A model's kind: the label `/info` shows and the `kind` model option forces."""

    MULTIMODAL = "multimodal"  # text and image embeddings in one space (SigLIP 2, SigLIP, CLIP)
    RERANK = "rerank"  # (query, document) relevance scores (cross-encoders, Qwen3-Reranker)
    CLASSIFIER = "classifier"  # text or pair -> a score per label (sentiment, NLI, prompt-injection guards)
    TOKEN_CLASSIFIER = "token-classifier"  # text -> a score per label for each token (named entities)
    SPARSE = "sparse"  # lexical weights over a vocabulary (SPLADE)
    MULTI_VECTOR = "multi-vector"  # one vector per token, MaxSim scoring (PyLate ColBERT)
    TEXT = "text"  # text embeddings (sentence-transformers, Qwen3-Embedding, BGE-M3 with its three outputs)


#: Every kind's label, in the order the family table lists them.
KINDS: tuple[str, ...] = tuple(kind.value for kind in Kind)

#: Pooling modes (sentence-transformers' names): the `pooling` model option's values.
POOLINGS: tuple[str, ...] = ("cls", "mean", "max", "lasttoken", "mean_sqrt_len_tokens")
