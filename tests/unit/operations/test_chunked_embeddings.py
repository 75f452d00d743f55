"""Over-long texts embedded in overlapping windows on request (vLLM's chunked processing): the
token-weighted mean of the windows' pooled vectors, then L2, against the same computed with
transformers on the real MiniLM (windows of its 256-token window, a quarter shared, as its
tokenizer's overflow gives them), cosine >= 0.99999; `usage` counts every window's tokens; a text
within the window is unchanged; MAX_EMBED_CHUNKS is a 413 before any forward pass; the deployment
default is CHUNKED_EMBEDDINGS."""

from __future__ import annotations

import numpy as np
import torch

from conftest import app_from

LONG = " ".join(f"word{i} the stock market fell sharply today and a cat sits on the mat" for i in range(60))


def reference(path: str, text: str) -> np.ndarray:
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    windows = tokenizer(text, truncation=True, max_length=256, stride=64, return_overflowing_tokens=True)["input_ids"]
    assert len(windows) >= 3
    pooled, weights = [], []
    with torch.no_grad():
        for ids in windows:
            hidden = model(input_ids=torch.tensor([ids])).last_hidden_state[0]
            pooled.append(hidden.mean(dim=0).numpy())
            weights.append(len(ids))
    vector = np.average(np.array(pooled, dtype=np.float64), axis=0, weights=weights)
    return vector / np.linalg.norm(vector)


def test_a_long_text_is_the_token_weighted_mean_of_its_windows(client, minilm_path):
    chunked = client.post("/v1/embeddings", json={"input": [LONG, "a cat"], "chunked": True}).get_json()
    plain = client.post("/v1/embeddings", json={"input": [LONG, "a cat"]}).get_json()
    ours = np.asarray(chunked["data"][0]["embedding"])
    assert float(ours @ reference(minilm_path, LONG)) >= 0.99999
    np.testing.assert_allclose(chunked["data"][1]["embedding"], plain["data"][1]["embedding"], atol=1e-6)
    assert chunked["usage"]["prompt_tokens"] > 3 * 256 > plain["usage"]["prompt_tokens"]
    tei = client.post("/embed", json={"inputs": LONG, "chunked": True}).get_json()[0]
    np.testing.assert_allclose(tei, ours, atol=1e-6)


def test_windows_past_the_budget_are_refused_before_any_forward_pass_and_the_deployment_may_default_to_chunks():
    app = app_from({"MAX_EMBED_CHUNKS": "3", "CHUNKED_EMBEDDINGS": "true"})
    client = app.test_client()
    engine = app.extensions["embedding_service"].engines.first
    before = engine.batcher.stats.batches
    resp = client.post("/v1/embeddings", json={"input": LONG})
    assert resp.status_code == 413 and "MAX_EMBED_CHUNKS" in resp.get_json()["error"]["message"]
    assert engine.batcher.stats.batches == before
    short = LONG[:1700]  # about 400 tokens, two or three windows: chunked by default here, cut without it
    default = client.post("/v1/embeddings", json={"input": short}).get_json()
    cut = client.post("/v1/embeddings", json={"input": short, "chunked": False}).get_json()
    assert default["usage"]["prompt_tokens"] > cut["usage"]["prompt_tokens"]
