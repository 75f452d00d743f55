"""The vector cache (VECTOR_CACHE): a hit answers exactly what the miss answered and what an
uncached server answers, for every field that changes a vector; `Cache-Control` bypasses or
refreshes it; the local cache stays within its byte budget; the Redis one is shared between
workers and a failing Redis costs nothing but the cache."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import app_from
from embedding_service.inference.vector_cache import ENTRY_OVERHEAD, LocalVectorCache, RedisVectorCache, cache_key
from support.servers import start_redis
from support.texts import DIALECT_LONG as LONG, MINILM

TEXTS = ["a cat sits on the mat", "the stock market fell", LONG]


def vectors(client, path="/v1/embeddings", headers=None, **body):
    resp = client.post(path, json=body, headers=headers or {})
    assert resp.status_code == 200, resp.get_json()
    data = resp.get_json()
    if isinstance(data, list):  # TEI: the rows, no usage
        return np.asarray(data, dtype=np.float32), None
    if "embeddings" in data:  # Ollama
        return np.asarray(data["embeddings"], dtype=np.float32), data["prompt_eval_count"]
    return np.asarray([row["embedding"] for row in data["data"]], dtype=np.float32), data["usage"]


@pytest.fixture(scope="module")
def apps(tiny):
    models = f"{MINILM},qwen={tiny['qwen']}"
    cached = app_from({"MODELS": models, "VECTOR_CACHE": "local"})
    plain = app_from({"MODELS": models})
    return cached, plain


#: Requests that differ in one field that changes a vector, or only in what follows pooling (then
#: they find the pooled vectors an earlier request stored: `new` is whether their texts are new keys).
VARIANTS = [
    ("/v1/embeddings", {"input": TEXTS}, True),
    ("/v1/embeddings", {"input": TEXTS, "dimensions": 64}, False),
    ("/v1/embeddings", {"input": TEXTS[:2], "model": "qwen", "input_type": "query"}, True),
    ("/v1/embeddings", {"input": TEXTS[:2], "model": "qwen", "instruction": "Find the animal"}, True),
    ("/v1/embeddings", {"input": TEXTS[:2], "model": "qwen", "instruction": "Find the market"}, True),
    ("/embed", {"inputs": TEXTS, "truncation_direction": "left"}, True),
    ("/embed", {"inputs": TEXTS, "normalize": False}, False),
    ("/embed", {"inputs": TEXTS[:2], "model": "qwen", "prompt_name": "document"}, True),
    ("/api/embed", {"input": TEXTS, "model": MINILM}, False),
]


def test_a_hit_is_exactly_the_miss_and_the_uncached_answer_for_every_field(apps):
    cached, plain = apps
    client, reference = cached.test_client(), plain.test_client()
    cache = cached.extensions["embedding_service"].engines.first.cache
    answers = []
    for path, body, new in VARIANTS:
        before = (cache.hits, cache.misses)
        miss, miss_usage = vectors(client, path, **body)
        hit, hit_usage = vectors(client, path, **body)
        expected, expected_usage = vectors(reference, path, **body)
        np.testing.assert_array_equal(hit, miss)
        np.testing.assert_allclose(hit, expected, atol=1e-6)  # uncached: the same vectors
        assert hit_usage == miss_usage == expected_usage  # usage counts the tokens as if computed
        count = len(body.get("input", body.get("inputs")))
        expected_counts = (count, count) if new else (2 * count, 0)  # (hits, misses) of the two requests
        assert (cache.hits - before[0], cache.misses - before[1]) == expected_counts, (path, body)
        answers.append(hit)
    # Each field kept its own entries: no two variants answered alike (but dimensions and
    # normalize, which follow pooling and share the pooled vectors)
    assert not np.allclose(answers[0], answers[5], atol=1e-3)  # truncation side on the long text
    assert not np.allclose(answers[3], answers[4], atol=1e-3)  # two instructions
    assert not np.allclose(answers[2], answers[3], atol=1e-3)  # prompt vs instruction
    np.testing.assert_allclose(answers[1], answers[0][:, :64] / np.linalg.norm(answers[0][:, :64], axis=1, keepdims=True),
                               atol=1e-6)


def test_cache_control_bypasses_or_refreshes_it(apps):
    client = apps[0].test_client()
    cache = apps[0].extensions["embedding_service"].engines.first.cache
    body = {"input": ["a text only the header tests send"]}
    before = (cache.hits, cache.misses)
    vectors(client, headers={"Cache-Control": "no-store"}, **body)
    assert (cache.hits, cache.misses) == before  # neither read nor written
    vectors(client, headers={"Cache-Control": "no-cache"}, **body)
    assert (cache.hits, cache.misses) == (before[0], before[1] + 1)  # computed, stored
    vectors(client, **body)
    assert (cache.hits, cache.misses) == (before[0] + 1, before[1] + 1)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'embedding_cache_lookups_total{model="sentence-transformers/all-MiniLM-L6-v2",result="hit"}' in metrics


def test_the_local_cache_stays_within_its_budget_least_recently_used_out_first():
    vector = np.ones(384, dtype=np.float32)
    entry_size = 32 + vector.nbytes + ENTRY_OVERHEAD
    cache = LocalVectorCache(budget=entry_size * 10)
    keys = [cache_key("m", "float32", "", True, "right", f"text {i}") for i in range(25)]
    cache.put_many([(key, (vector * i, 3)) for i, key in enumerate(keys[:10])])
    assert cache.bytes == entry_size * 10
    cache.get_many([keys[0]])  # the oldest, used again: kept
    cache.put_many([(key, (vector, 3)) for key in keys[10:25]])
    assert cache.bytes <= cache.budget and len(cache._entries) == 10
    found = cache.get_many(keys)
    assert found[0] is None and all(entry is not None for entry in found[15:])
    assert cache_key("m", "float32", "", True, "right", "a") != cache_key("m", "float32", "", True, "left", "a")
    assert cache_key("m", "float32", "x", True, "right", "a") != cache_key("m", "float32", "", True, "right", "xa")


def test_redis_shares_entries_between_workers_and_a_failing_redis_only_costs_the_cache(tmp_path):
    port, proc = start_redis(str(tmp_path))
    try:
        env = {"MODEL_NAME": MINILM, "VECTOR_CACHE": "redis", "RATE_LIMIT_STORAGE_URI": f"redis://127.0.0.1:{port}/0"}
        first, second = app_from(env).test_client(), app_from(env).test_client()  # two workers' apps
        miss, _ = vectors(first, input=TEXTS)
        shared = second.application.extensions["embedding_service"].engines.first.cache
        assert isinstance(shared, RedisVectorCache)
        hit, _ = vectors(second, input=TEXTS)
        assert shared.hits == len(TEXTS) and shared.misses == 0
        np.testing.assert_array_equal(hit, miss)
        proc.terminate()
        proc.wait(timeout=10)
        after, _ = vectors(second, input=["a text computed while Redis is gone"])
        assert after.shape == (1, 384) and shared.errors >= 1
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


def test_redis_cache_needs_the_rate_limits_redis():
    from embedding_service.config.env_source import SettingsError

    with pytest.raises(SettingsError, match="VECTOR_CACHE=redis .* RATE_LIMIT_STORAGE_URI"):
        app_from({"MODEL_NAME": MINILM, "VECTOR_CACHE": "redis"})


def test_the_cache_interface_leaves_nothing_unimplemented():
    from embedding_service.inference.vector_cache import VectorCache

    with pytest.raises(TypeError):
        VectorCache()  # abstract: only the local and Redis caches exist
    for cls in (LocalVectorCache, RedisVectorCache):
        assert not cls.__abstractmethods__
