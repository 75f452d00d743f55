"""Parity with the models' reference recipes, batch invariance, truncation, prompts, Matryoshka
dimensions, token-id inputs and exact usage counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoTokenizer

from conftest import openai_vectors
from support.texts import LONG, TEXTS, cosine_rows
from support.tiny_models import QWEN3_QUERY_PROMPT

def differ(vectors: np.ndarray) -> None:
    """Guard against a degenerate model making parity trivial: distinct texts, distinct vectors."""
    sims = vectors @ vectors.T
    assert sims[~np.eye(len(vectors), dtype=bool)].min() < 0.99


# ------------------------------------------------------------------ real MiniLM
def test_minilm_matches_sentence_transformers(client, minilm_path):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(minilm_path, device="cpu").encode(TEXTS, convert_to_numpy=True)
    ours = openai_vectors(client, TEXTS)
    assert ours.shape == (len(TEXTS), 384)
    assert cosine_rows(ours, reference).min() >= 0.99999
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    differ(ours[:6])


def test_minilm_truncates_at_max_seq_length_and_counts_tokens(client, minilm_path):
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    resp = client.post("/v1/embeddings", json={"input": [LONG, "a cat"]}).get_json()
    expected = min(len(tokenizer(LONG)["input_ids"]), 256) + len(tokenizer("a cat")["input_ids"])
    assert len(tokenizer(LONG)["input_ids"]) > 256
    assert resp["usage"] == {"prompt_tokens": expected, "total_tokens": expected}
    assert expected == 256 + 4


def test_left_truncation_matches_reference(client, minilm_path):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(minilm_path, device="cpu")
    st.tokenizer.truncation_side = "left"
    reference = st.encode([LONG + " tail words here"], convert_to_numpy=True)
    resp = client.post("/embed", json={"inputs": LONG + " tail words here", "truncation_direction": "Left"})
    ours = np.array(resp.get_json(), dtype=np.float32)
    assert cosine_rows(ours, reference)[0] >= 0.99999
    right = np.array(client.post("/embed", json={"inputs": LONG + " tail words here"}).get_json())
    assert cosine_rows(ours, right)[0] < 0.999  # the direction really changed what was fed


@pytest.mark.parametrize("model", ["sentence-transformers/all-MiniLM-L6-v2", "qwen", "bert-cls", "bert-max"])
def test_batch_invariance(client, model):
    short = ["a cat sits on the mat", "hello", "今天天气很好"]
    longer = [LONG, "the stock market fell " * 30, "deep learning " * 50]
    alone = np.concatenate([openai_vectors(client, [t], model=model) for t in short])
    mixed = openai_vectors(client, longer[:1] + short[:1] + longer[1:] + short[1:], model=model)
    together = mixed[[1, 4, 5]]
    assert np.abs(alone - together).max() <= 1e-5


# ------------------------------------------------------------------ tiny Qwen3-Embedding
def qwen3_recipe(path: str, texts: list[str], max_length: int = 512) -> np.ndarray:
    """The official Qwen3-Embedding transformers recipe (model card), verbatim in substance."""

    def last_token_pool(last_hidden_states, attention_mask):
        left_padding = attention_mask[:, -1].sum() == attention_mask.shape[0]
        if left_padding:
            return last_hidden_states[:, -1]
        sequence_lengths = attention_mask.sum(dim=1) - 1
        return last_hidden_states[torch.arange(last_hidden_states.shape[0]), sequence_lengths]

    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = AutoModel.from_pretrained(path).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch)
    return F.normalize(last_token_pool(out.last_hidden_state, batch["attention_mask"]), p=2, dim=1).numpy()


def test_qwen3_instruction_matches_official_recipe(client, tiny):
    task = "Given a web search query, retrieve relevant passages that answer the query"
    queries = ["What is the capital of China?", "Explain gravity", "a cat"]
    reference = qwen3_recipe(tiny["qwen"], [f"Instruct: {task}\nQuery:{q}" for q in queries])
    ours = openai_vectors(client, queries, model="qwen", instruction=task)
    assert cosine_rows(ours, reference).min() >= 0.99999
    differ(ours)
    # input_type "query" selects the model's own query prompt, which is that same template.
    by_type = openai_vectors(client, queries, model="qwen", input_type="query")
    assert cosine_rows(by_type, reference).min() >= 0.99999


def test_qwen3_documents_and_eos(client, tiny):
    docs = ["The capital of China is Beijing.", "Gravity is a force that attracts two bodies.", "short"]
    reference = qwen3_recipe(tiny["qwen"], docs)
    ours = openai_vectors(client, docs, model="qwen", input_type="document")
    assert cosine_rows(ours, reference).min() >= 0.99999
    tokenizer = AutoTokenizer.from_pretrained(tiny["qwen"])
    assert tokenizer(docs[0])["input_ids"][-1] == tokenizer.eos_token_id  # EOS appended by the tokenizer
    usage = client.post("/v1/embeddings", json={"input": docs, "model": "qwen"}).get_json()["usage"]
    assert usage["prompt_tokens"] == sum(len(tokenizer(d)["input_ids"]) for d in docs)


def test_qwen3_matches_sentence_transformers_prompt(client, tiny):
    from sentence_transformers import SentenceTransformer

    queries = ["What is the capital of China?", "neural networks"]
    reference = SentenceTransformer(tiny["qwen"], device="cpu").encode(queries, prompt_name="query")
    resp = client.post("/embed", json={"inputs": queries, "model": "qwen", "prompt_name": "query"})
    assert cosine_rows(np.array(resp.get_json()), reference).min() >= 0.99999
    assert QWEN3_QUERY_PROMPT.startswith("Instruct: ")


# ------------------------------------------------------------------ tiny BERTs
def manual_bert(path: str, texts: list[str], pooling: str, max_length: int) -> np.ndarray:
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    if pooling == "cls":
        pooled = hidden[:, 0]
    elif pooling == "mean":
        pooled = (hidden * mask).sum(1) / mask.sum(1)
    else:
        pooled = hidden.masked_fill(mask == 0, -1e9).max(1).values
    return F.normalize(pooled, p=2, dim=1).numpy()


SAMPLES = ["a cat sits on the mat", "the weather is nice and sunny", "paris is the capital of france " * 8, "x"]


@pytest.mark.parametrize(
    "alias,key,pooling,max_length",
    [
        ("bert-cls", "bert_cls", "cls", 64),  # new-format pooling config
        ("bert-max", "bert_max_legacy", "max", 64),  # legacy pooling_mode_* flags
        ("bert-mean", "bert_mean_legacy", "mean", 64),
        ("plain-max", "plain_bert", "max", 16),  # explicit pooling and max_length options
    ],
)
def test_bert_pooling_matches_manual_recipe(client, tiny, alias, key, pooling, max_length):
    reference = manual_bert(tiny[key], SAMPLES, pooling, max_length)
    ours = openai_vectors(client, SAMPLES, model=alias)
    assert cosine_rows(ours, reference).min() >= 0.99999
    differ(ours)


def test_pooling_modes_really_differ(client):
    cls_vec = openai_vectors(client, SAMPLES[:2], model="bert-cls")
    max_vec = openai_vectors(client, SAMPLES[:2], model="bert-max")
    assert cosine_rows(cls_vec, max_vec).max() < 0.999


# ------------------------------------------------------------------ request options
def test_dimensions_truncate_then_renormalise(client):
    full = openai_vectors(client, ["a cat sits on the mat", "hello"])
    short = openai_vectors(client, ["a cat sits on the mat", "hello"], dimensions=64)
    expected = full[:, :64] / np.linalg.norm(full[:, :64], axis=1, keepdims=True)
    assert short.shape == (2, 64)
    np.testing.assert_allclose(short, expected, atol=1e-6)


def test_tei_normalize_false_returns_raw_pooling(client, tiny):
    raw = np.array(client.post("/embed", json={"inputs": SAMPLES[:2], "model": "bert-mean", "normalize": False}).get_json())
    tokenizer = AutoTokenizer.from_pretrained(tiny["bert_mean_legacy"])
    model = AutoModel.from_pretrained(tiny["bert_mean_legacy"]).eval()
    batch = tokenizer(SAMPLES[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    np.testing.assert_allclose(raw, expected, atol=1e-5)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)


def test_token_id_inputs_equal_text_inputs(client, minilm_path):
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    texts = ["a cat sits on the mat", "the stock market fell"]
    ids = [tokenizer(t)["input_ids"] for t in texts]
    by_text = openai_vectors(client, texts)
    by_ids = openai_vectors(client, ids)
    single = openai_vectors(client, ids[0])
    np.testing.assert_allclose(by_ids, by_text, atol=1e-6)
    np.testing.assert_allclose(single[0], by_text[0], atol=1e-6)
    usage = client.post("/v1/embeddings", json={"input": ids}).get_json()["usage"]
    assert usage["prompt_tokens"] == sum(map(len, ids))


def test_instruction_on_plain_model_is_prepended(client):
    prefixed = openai_vectors(client, ["Represent this: a cat"])
    by_instruction = openai_vectors(client, ["a cat"], instruction="Represent this: ")
    np.testing.assert_allclose(by_instruction, prefixed, atol=1e-6)
