"""Reranking: parity of each reranker family with its recipe, order invariance, the Cohere SDKs
against a live server, the embedding-model fallback, chunking, and the limits."""

from __future__ import annotations

import random

import numpy as np
import pytest
from support.errors import expect_error, error_message
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

QUERY = "what is deep learning?"
DOCS = [
    "deep learning is a subset of machine learning",
    "the weather is nice and sunny",
    "neural networks are inspired by the human brain",
    "paris is the capital of france",
    "embedding vectors represent meaning " * 3,
]


def scores_by_index(body: dict) -> dict[int, float]:
    return {row["index"]: row["relevance_score"] for row in body["results"]}


def post_rerank(client, path="/rerank", **body):
    resp = client.post(path, json=body)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


# ------------------------------------------------------------------ recipes
def qwen3_reranker_recipe(path: str, query: str, docs: list[str], instruction=None, max_length=512) -> np.ndarray:
    """The Qwen3-Reranker model card's transformers recipe."""
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    token_false_id = tokenizer.convert_tokens_to_ids("no")
    token_true_id = tokenizer.convert_tokens_to_ids("yes")
    prefix = "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n"
    suffix = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    prefix_tokens = tokenizer.encode(prefix, add_special_tokens=False)
    suffix_tokens = tokenizer.encode(suffix, add_special_tokens=False)
    instruction = instruction or "Given a web search query, retrieve relevant passages that answer the query"
    pairs = [f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}" for doc in docs]
    inputs = tokenizer(pairs, padding=False, truncation="longest_first", return_attention_mask=False,
                       max_length=max_length - len(prefix_tokens) - len(suffix_tokens))
    for i, ele in enumerate(inputs["input_ids"]):
        inputs["input_ids"][i] = prefix_tokens + ele + suffix_tokens
    inputs = tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=max_length)
    with torch.no_grad():
        batch_scores = model(**inputs).logits[:, -1, :]
    true_vector = batch_scores[:, token_true_id]
    false_vector = batch_scores[:, token_false_id]
    batch_scores = torch.nn.functional.log_softmax(torch.stack([false_vector, true_vector], dim=1), dim=1)
    return batch_scores[:, 1].exp().numpy()


def test_qwen3_reranker_matches_official_recipe(rr_client, rerankers):
    docs = DOCS + ["a long document " * 200]  # cut to fit, as the recipe does
    body = post_rerank(rr_client, query=QUERY, documents=docs)
    assert body["model"] == "qwen3-reranker"
    ours = scores_by_index(body)
    expected = qwen3_reranker_recipe(rerankers["qwen3"], QUERY, docs)
    assert max(abs(ours[i] - expected[i]) for i in range(len(docs))) <= 1e-5
    assert np.ptp(expected) > 0.05  # the tiny model discriminates, so the comparison means something
    task = "Judge whether the passage is about weather"
    ours = scores_by_index(post_rerank(rr_client, query=QUERY, documents=DOCS, instruction=task))
    expected = qwen3_reranker_recipe(rerankers["qwen3"], QUERY, DOCS, instruction=task)
    assert max(abs(ours[i] - expected[i]) for i in range(len(DOCS))) <= 1e-5


def test_bert_cross_encoder_matches_sentence_transformers(rr_client, rerankers):
    from sentence_transformers import CrossEncoder

    expected = CrossEncoder(rerankers["bert"], device="cpu").predict([(QUERY, d) for d in DOCS])
    ours = scores_by_index(post_rerank(rr_client, "/v1/rerank", query=QUERY, documents=DOCS, model="bert-ce"))
    assert max(abs(ours[i] - expected[i]) for i in range(len(DOCS))) <= 1e-5
    assert np.ptp(expected) > 0.01


def test_xlmr_cross_encoder_matches_manual_recipe(rr_client, rerankers):
    tokenizer = AutoTokenizer.from_pretrained(rerankers["xlmr"])
    model = AutoModelForSequenceClassification.from_pretrained(rerankers["xlmr"]).eval()
    inputs = tokenizer([QUERY] * len(DOCS), DOCS, padding=True, truncation=True, return_tensors="pt", max_length=64)
    with torch.no_grad():
        logits = model(**inputs, return_dict=True).logits.view(-1).float()
    ours = post_rerank(rr_client, "/v2/rerank", query=QUERY, documents=DOCS, model="xlmr-ce", raw_scores=True)
    raw = scores_by_index(ours)
    assert max(abs(raw[i] - float(logits[i])) for i in range(len(DOCS))) <= 1e-5
    relevance = scores_by_index(post_rerank(rr_client, "/v2/rerank", query=QUERY, documents=DOCS, model="xlmr-ce"))
    sigmoid = torch.sigmoid(logits).numpy()
    assert max(abs(relevance[i] - sigmoid[i]) for i in range(len(DOCS))) <= 1e-5
    for field in ("use_activation", "softmax", "activation"):  # vLLM's switch (and its older names)
        vllm = scores_by_index(post_rerank(rr_client, "/v1/rerank", query=QUERY, documents=DOCS, model="xlmr-ce", **{field: False}))
        assert vllm == raw
    on = scores_by_index(post_rerank(rr_client, "/rerank", query=QUERY, documents=DOCS, model="xlmr-ce", use_activation=True))
    assert on == relevance
    clash = rr_client.post("/rerank", json={"query": QUERY, "documents": DOCS, "raw_scores": True, "use_activation": True})
    expect_error(clash, 400, "use_activation", "send one of", style="nested")  # vLLM's request: vLLM's body
    assert clash.get_json()["error"]["type"] == "BadRequestError"


@pytest.mark.parametrize("model", ["qwen3-reranker", "bert-ce", "xlmr-ce", "sentence-transformers/all-MiniLM-L6-v2"])
def test_scores_do_not_depend_on_order_or_batching(rr_client, model):
    docs = DOCS + [f"document number {i} " * (i + 1) for i in range(7)]  # MAX_BATCH_SIZE=4: several batches
    first = post_rerank(rr_client, query=QUERY, documents=docs, model=model)
    order = list(range(len(docs)))
    random.Random(3).shuffle(order)
    second = post_rerank(rr_client, query=QUERY, documents=[docs[i] for i in order], model=model)
    a = scores_by_index(first)
    b = {order[i]: s for i, s in scores_by_index(second).items()}
    assert a.keys() == b.keys()
    assert max(abs(a[i] - b[i]) for i in a) <= 1e-6
    scores = [row["relevance_score"] for row in first["results"]]
    assert scores == sorted(scores, reverse=True)


# ------------------------------------------------------------------ the Cohere SDKs
def test_cohere_v1_and_v2_clients(rr_url):
    import cohere

    v1 = cohere.Client(base_url=rr_url, api_key="unused")
    plain = v1.rerank(query=QUERY, documents=DOCS, top_n=3)
    assert [r.document for r in plain.results] == [None] * 3
    assert len(plain.results) == 3 and plain.meta.api_version.version == "1"
    assert plain.id.startswith("rerank-") and plain.meta.billed_units.search_units == 1
    with_docs = v1.rerank(query=QUERY, documents=DOCS, return_documents=True, model="bert-ce")
    assert {r.index: r.document.text for r in with_docs.results} == dict(enumerate(DOCS))
    v2 = cohere.ClientV2(base_url=rr_url, api_key="unused")
    result = v2.rerank(model="qwen3-reranker", query=QUERY, documents=DOCS, top_n=2)
    assert len(result.results) == 2 and result.meta.api_version.version == "2"
    assert {r.index for r in result.results} <= set(range(len(DOCS)))
    by_v1 = {r.index: r.relevance_score for r in v1.rerank(query=QUERY, documents=DOCS).results}
    assert all(abs(by_v1[r.index] - r.relevance_score) < 1e-6 for r in result.results)
    documents = v2.rerank(
        model="qwen3-reranker", query=QUERY, documents=DOCS,
        request_options={"additional_body_parameters": {"return_documents": True}},
    )
    raw = documents.model_dump()
    assert all(row.get("document", {}).get("text") == DOCS[row["index"]] for row in raw["results"])


def test_plain_rerank_route_returns_documents_by_default(rr_client):
    body = post_rerank(rr_client, "/rerank", query=QUERY, texts=DOCS, top_n=2)
    assert [row["document"]["text"] for row in body["results"]] == [DOCS[row["index"]] for row in body["results"]]
    body = post_rerank(rr_client, "/rerank", query=QUERY, texts=DOCS, return_documents=False)
    assert "document" not in body["results"][0]
    assert body["meta"]["api_version"] == {"version": "1"}
    # `texts` with one of TEI's own fields is TEI's request: TEI's answer (tests/service/dialects/test_tei.py)
    tei = post_rerank(rr_client, "/rerank", query=QUERY, texts=DOCS, return_text=False)
    assert isinstance(tei, list) and set(tei[0]) == {"index", "score"}


# ------------------------------------------------------------------ the embedded default
def test_default_model_ranks_by_cosine(client):
    body = post_rerank(client, query="a cat sits on the mat", documents=["the stock market fell", "a kitten rests on a rug"])
    assert [row["index"] for row in body["results"]] == [1, 0]
    assert body["model"] == "sentence-transformers/all-MiniLM-L6-v2 (cosine similarity)"
    assert all(0.0 <= row["relevance_score"] <= 1.0 for row in body["results"])
    raw = post_rerank(client, query="a cat sits on the mat", documents=["a kitten rests on a rug"], raw_scores=True)
    assert abs((raw["results"][0]["relevance_score"] + 1) / 2 - body["results"][0]["relevance_score"]) < 1e-6


def test_cohere_sdk_against_the_default(live_url):
    import cohere

    result = cohere.Client(base_url=live_url, api_key="unused").rerank(
        query="a cat sits on the mat", documents=["the stock market fell", "a kitten rests on a rug"]
    )
    assert [r.index for r in result.results] == [1, 0]


def test_max_chunks_per_doc_finds_the_answer_at_the_end(client, minilm_path):
    filler = "The quarterly report shows revenue growth in the manufacturing sector, driven by exports and lower energy costs. "
    long_doc = filler * 20 + "Cats like to sleep on a warm windowsill in the sun."
    tokens = len(AutoTokenizer.from_pretrained(minilm_path)(long_doc)["input_ids"])
    assert 380 <= tokens <= 440 and tokens > 256
    docs = [long_doc, "The train leaves at noon."]
    plain = post_rerank(client, query="Where do cats like to sleep?", documents=docs)
    chunked = post_rerank(client, query="Where do cats like to sleep?", documents=docs, max_chunks_per_doc=4)
    assert plain["results"][0]["index"] == 1
    assert chunked["results"][0]["index"] == 0
    assert chunked["meta"]["tokens"]["input_tokens"] > plain["meta"]["tokens"]["input_tokens"]


def test_multimodal_default_ranks_images_by_its_sigmoid_score(mm_client, multimodal):
    from transformers import AutoModel

    from support.image_files import data_uri, encode, picture

    images = [data_uri(encode(picture(seed=s), "PNG")) for s in range(3)]
    body = post_rerank(mm_client, query="a yellow square", documents=[{"image": uri} for uri in images])
    assert body["model"] == "siglip2 (sigmoid image-text score)"
    vectors = np.array(mm_client.post("/embed", json={"images": images}).get_json())
    query = np.array(mm_client.post("/embed_text", json={"text": "a yellow square"}).get_json())[0]
    model = AutoModel.from_pretrained(multimodal["siglip2"])
    logits = vectors @ query * float(model.logit_scale.exp()) + float(model.logit_bias)
    expected = 1 / (1 + np.exp(-logits))
    ours = scores_by_index(body)
    assert max(abs(ours[i] - expected[i]) for i in range(3)) <= 1e-5


# ------------------------------------------------------------------ limits
@pytest.mark.parametrize(
    "body,status,param,fragment",
    [
        ({"query": "", "documents": ["a"]}, 400, "query", "empty"),
        ({"query": "q", "documents": []}, 400, "documents", "empty list"),
        ({"query": "q"}, 400, "documents", "exactly one"),
        ({"query": "q", "documents": ["a"], "texts": ["b"]}, 400, "documents", "exactly one"),
        ({"query": "q", "documents": ["a"], "top_n": 0}, 400, "top_n", "at least 1"),
        ({"query": "q", "documents": ["a", ""]}, 400, "documents", "documents[1]"),
        ({"query": "q", "documents": [{"title": "x"}]}, 400, "documents", "documents[0]"),
        ({"query": "q", "documents": ["a"], "model": "cohere-rerank-v3"}, 404, "model", "served models"),
        ({"query": "q", "documents": ["a"], "model": "bert-ce", "instruction": "x"}, 400, "instruction", "no instruction"),
        ({"query": "q", "documents": [{"image": "data:image/png;base64,AAAA"}], "model": "bert-ce"}, 400, "documents", "image"),
        ({"query": "q", "documents": ["word " * 300], "model": "bert-ce", "truncate": False}, 422, "documents", "at most 64"),
        ({"query": "q", "documents": ["a"] * 2049}, 413, "documents", "2048"),
        ({"query": "q", "documents": ["a"], "relevant_spans": True}, 400, "relevant_spans", "unknown field"),
    ],
)
def test_limits(rr_client, body, status, param, fragment):
    resp = rr_client.post("/v1/rerank", json=body)
    message = expect_error(resp, status, param, style="cohere")  # Cohere's route: {"id", "message"}
    assert fragment.lower() in message.lower()
    assert rr_client.post("/v1/rerank", json={"query": "q", "documents": ["a", "b"]}).status_code == 200


def test_top_n_larger_than_the_list_returns_all_and_rank_fields(rr_client):
    body = post_rerank(rr_client, query=QUERY, documents=DOCS[:3], top_n=10)
    assert sorted(row["index"] for row in body["results"]) == [0, 1, 2]
    docs = [{"title": "Deep learning", "body": DOCS[0]}, {"title": "Weather", "body": DOCS[1]}]
    by_fields = post_rerank(rr_client, "/v1/rerank", query=QUERY, documents=docs, rank_fields=["title", "body"], model="bert-ce",
                            return_documents=True)
    as_text = post_rerank(rr_client, "/v1/rerank", query=QUERY, model="bert-ce",
                          documents=[f"title: {d['title']}\nbody: {d['body']}" for d in docs])
    assert scores_by_index(by_fields) == pytest.approx(scores_by_index(as_text), abs=1e-6)
    assert by_fields["results"][0]["document"] == docs[by_fields["results"][0]["index"]]
