"""Unpadded execution (models/unpadded.py) against the padded forward of the same weights, in
float32: embedders in every pooling mode, BERT and XLM-R cross-encoders and token states, on
batches that mix lengths; batch invariance; and the families it leaves padded."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import load_registry
from embedding_service.config.settings import Settings
from embedding_service.inference import compute
from embedding_service.models.prompts import PromptChoice
from support.texts import LONG

#: Lengths from 1 word to past the tiny models' windows, in arrival order (unsorted).
MIXED = ["hi", LONG, "a cat sits on the mat", "the stock market fell " * 12, "今天天气很好", "deep learning " * 40,
         "x", "Paris is the capital and most populous city of France."]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def pairs_of_engines(tiny, rerankers, minilm_path):
    """{alias: (unpadded engine, padded engine)} for the same weights, loaded twice."""
    models = ",".join([
        f"minilm={minilm_path}", f"bert-cls={tiny['bert_cls']}", f"bert-max={tiny['bert_max_legacy']}",
        f"bert-mean={tiny['bert_mean_legacy']}", f"plain-sqrt={tiny['plain_bert']};pooling=mean_sqrt_len_tokens",
        f"plain-last={tiny['plain_bert']};pooling=lasttoken", f"qwen={tiny['qwen']}",
        f"bert-ce={rerankers['bert']}", f"xlmr-ce={rerankers['xlmr']}",
    ])
    engines = {}
    for unpadded in ("true", "false"):
        registry = load_registry(Settings.from_mapping({"MODELS": models, "DEVICE": "cpu", "LOG_LEVEL": "WARNING",
                                                        "CPU_KERNELS": "onednn", "UNPADDED": unpadded}), warmup=False)
        for engine in registry.engines:
            engines.setdefault(engine.aliases[0] if engine.aliases else engine.name, []).append(engine)
    return {alias: tuple(pair) for alias, pair in engines.items()}


EMBEDDERS = ["minilm", "bert-cls", "bert-max", "bert-mean", "plain-sqrt", "plain-last", "qwen"]


@pytest.mark.parametrize("alias", EMBEDDERS)
def test_unpadded_embeddings_equal_the_padded_forward(pairs_of_engines, alias):
    packed, padded = pairs_of_engines[alias]
    assert packed.model.unpadded and not padded.model.unpadded
    assert packed.info()["unpadded"] is True and padded.info()["unpadded"] is False
    items = packed.model.prepare_texts(MIXED, PromptChoice(), True, "right")
    assert len({len(item) for item in items}) > 4  # lengths really mix
    a = compute.run(packed.model.forward, items)
    b = compute.run(padded.model.forward, items)
    assert a.shape == b.shape == (len(MIXED), packed.model.dimension)
    assert cosines(a, b).min() >= 0.99999
    assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max()


@pytest.mark.parametrize("alias", EMBEDDERS)
def test_unpadded_batch_invariance(pairs_of_engines, alias):
    model = pairs_of_engines[alias][0].model
    items = model.prepare_texts(MIXED, PromptChoice(), True, "right")
    together = compute.run(model.forward, items)
    alone = np.concatenate([compute.run(model.forward, [item]) for item in items])
    assert np.abs(together - alone).max() <= 1e-5 * max(1.0, np.abs(alone).max())


def test_unpadded_token_states_equal_the_padded_ones(pairs_of_engines):
    packed, padded = pairs_of_engines["minilm"]
    items = packed.model.prepare_texts(MIXED, PromptChoice(), True, "right")
    a = compute.run(packed.model.token_states, items)
    b = compute.run(padded.model.token_states, items)
    assert [len(x) for x in a] == [len(item) for item in items] == [len(x) for x in b]
    for x, y in zip(a, b):
        assert cosines(x, y).min() >= 0.99999


@pytest.mark.parametrize("alias", ["bert-ce", "xlmr-ce"])
def test_unpadded_cross_encoders_score_as_the_padded_forward(pairs_of_engines, alias):
    packed, padded = pairs_of_engines[alias]
    assert packed.model.unpadded and not padded.model.unpadded
    items = packed.model.prepare_pairs("what is the capital of France?", MIXED, None, True, None)
    assert len({len(item) for item in items}) > 4
    a = compute.run(packed.model.forward, items)
    b = compute.run(padded.model.forward, items)
    assert np.abs(a - b).max() <= 1e-5 * max(1.0, np.abs(b).max())
    assert np.ptp(b) > 1e-3  # the scores differ between documents: the comparison means something
    alone = np.concatenate([compute.run(packed.model.forward, [item]) for item in items])
    assert np.abs(alone - a).max() <= 1e-5 * max(1.0, np.abs(a).max())


def test_qwen3_runs_unpadded_and_a_sliding_window_model_does_not(pairs_of_engines):
    from embedding_service.models.unpadded_decoder import packed_decoder

    model = pairs_of_engines["qwen"][0].model.model
    assert packed_decoder(model) is not None
    model.config.layer_types = ["sliding_attention"] + list(model.config.layer_types[1:])
    try:
        assert packed_decoder(model) is None
    finally:
        model.config.layer_types = ["full_attention"] * len(model.config.layer_types)


def test_unpadded_qwen3_reranker_scores_as_the_padded_forward(rerankers):
    engines = []
    for unpadded in ("true", "false"):
        registry = load_registry(Settings.from_mapping({
            "MODELS": f"qwen3-rr={rerankers['qwen3']}", "DEVICE": "cpu", "LOG_LEVEL": "WARNING", "CPU_KERNELS": "onednn",
            "UNPADDED": unpadded}), warmup=False)
        engines.append(registry.engines[0])
    packed, padded = engines
    assert packed.model.unpadded and not padded.model.unpadded
    items = packed.model.prepare_pairs("what is the capital of France?", MIXED, None, True, None)
    a = compute.run(packed.model.forward, items)
    b = compute.run(padded.model.forward, items)
    assert np.ptp(b) > 1e-3
    assert np.abs(a - b).max() <= 1e-4 * max(1.0, np.abs(b).max())
    alone = np.concatenate([compute.run(packed.model.forward, [item]) for item in items])
    assert np.abs(alone - a).max() <= 1e-4 * max(1.0, np.abs(a).max())
