"""Tiny random-weight sequence classifiers with several labels, as the real repositories lay them
out: a three-label sentiment or NLI-style BERT (softmax) and a multi-label one
(`problem_type: multi_label_classification`, as SamLowe/roberta-base-go_emotions: sigmoid), and a
token classifier with BIO entity labels (as dslim/bert-base-NER lays it out)."""

from __future__ import annotations

import torch

from support.tiny_models import wordpiece_tokenizer


def _bert(architecture: str, path: str, labels, seed: int, **extra) -> str:
    """A tiny BERT of `architecture` (a transformers class name) with `labels`, saved with its tokenizer."""
    import transformers

    tokenizer = wordpiece_tokenizer(model_max_length=64, model_input_names=["input_ids", "token_type_ids", "attention_mask"])
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=128, initializer_range=0.3, num_labels=len(labels),
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)}, **extra,
    )
    getattr(transformers, architecture)(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_classifier(path: str, labels=("negative", "neutral", "positive"), multi_label: bool = False, seed: int = 0) -> str:
    return _bert("BertForSequenceClassification", path, labels, seed,
                 problem_type="multi_label_classification" if multi_label else "single_label_classification")


#: dslim/bert-base-NER's label scheme.
NER_LABELS = ("O", "B-MISC", "I-MISC", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")


def build_token_classifier(path: str, labels=NER_LABELS, seed: int = 0) -> str:
    """A tiny BertForTokenClassification (named entities) with a WordPiece tokenizer."""
    return _bert("BertForTokenClassification", path, labels, seed)


_BUILT: dict[str, str] = {}


def shared_classifier() -> str:
    """One tiny three-label classifier per test process, in a temporary folder (for apps built at collection)."""
    if "sentiment" not in _BUILT:
        import os
        import tempfile

        _BUILT["sentiment"] = build_classifier(os.path.join(tempfile.mkdtemp(prefix="tiny-classifier-"), "sentiment"))
    return _BUILT["sentiment"]


def shared_token_classifier() -> str:
    """One tiny NER token classifier per test process, in a temporary folder (for apps built at collection)."""
    if "ner" not in _BUILT:
        import os
        import tempfile

        _BUILT["ner"] = build_token_classifier(os.path.join(tempfile.mkdtemp(prefix="tiny-token-classifier-"), "ner"))
    return _BUILT["ner"]
