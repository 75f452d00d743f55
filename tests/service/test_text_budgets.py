"""Per-request text budgets and the work they bound: MAX_INPUT_CHARS and MAX_REQUEST_CHARS count
the text as the model sees it (prompt, instruction, and for pair rerankers the query once per
document) before any tokenising; MAX_RERANK_CHUNKS is checked before any forward pass;
MAX_QUEUE_SIZE holds for every request; and tokenising with truncation costs what the model's
window uses while giving exactly the whole text's tokens. One process, loopback only, bounded."""

from __future__ import annotations

import random
import threading
import time

import pytest
from transformers import AutoTokenizer

from conftest import load_registry
from embedding_service.process.boot import local_app
from embedding_service.inference.batch_plan import BatchBounds
from embedding_service.inference.batching import Batcher
from embedding_service.inference.engine import Capability, Engine
from embedding_service.domain.errors import LimitExceeded, Unavailable
from embedding_service.http.errors import error_headers
from embedding_service.models.items import TokenIds
from embedding_service.models.prompts import PromptChoice
from embedding_service.models.tokenize import ConcurrentTokenizer
from embedding_service.inference.registry import Registry
from embedding_service.operations.embed import check_text_chars
from embedding_service.config.settings import Settings
from embedding_service.operations.state import RequestBudgets
from support.errors import error_style, expect_error

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def minilm_registry():
    return load_registry(Settings.from_mapping({"LOG_LEVEL": "WARNING"}))


@pytest.fixture(scope="module")
def qwen_registry(tiny):
    """The tiny Qwen3 embedder (prompts `query` and `document`)."""
    return load_registry(Settings.from_mapping({"MODELS": f"qwen={tiny['qwen']}", "LOG_LEVEL": "WARNING"}))


@pytest.fixture(scope="module")
def rr_registry(rerankers):
    """The tiny Qwen3-Reranker (the default reranker) and the two tiny cross-encoders."""
    return load_registry(Settings.from_mapping({
        "RERANK_MODEL": rerankers["qwen3"], "MODELS": f"bert-ce={rerankers['bert']},xlmr-ce={rerankers['xlmr']}",
        "LOG_LEVEL": "WARNING",
    }))


def make_client(registry, **env):
    env = {"LOG_LEVEL": "WARNING", "DEVICE": "cpu", **env}
    return local_app(Settings.from_mapping(env), engines=registry).test_client()


def too_large(resp, param, *fragments) -> str:
    """The 413's message (in the route's dialect's error body), checked to name `param` and `fragments`."""
    if error_style(resp.get_json()) == "flat":  # Ollama's body has no field name to check
        assert resp.status_code == 413, resp.get_json()
        param = None
    return expect_error(resp, 413, param, *fragments)


def small_queue(engine: Engine, size: int):
    """A client of an app serving `engine`'s loaded model behind a queue of `size` items."""
    limits = BatchBounds(max_batch_size=4, max_batch_tokens=16384, max_queue_size=size)
    registry = Registry([Engine(engine.model, limits, observer=None, cpu_share=None)], "cpu")
    return local_app(Settings.from_mapping({"LOG_LEVEL": "WARNING"}), engines=registry).test_client()


# ------------------------------------------------------------------ MAX_INPUT_CHARS, MAX_REQUEST_CHARS
def test_openai_instruction_counts_against_max_input_chars(minilm_registry):
    client = make_client(minilm_registry, MAX_INPUT_CHARS="1000")
    body = {"input": ["ok", "x" * 990], "instruction": "Represent this: "}  # 16 + 990 > 1000
    message = too_large(client.post("/v1/embeddings", json=body), "input", "input[1]", "1006 characters",
                        "instruction included", "at most 1000 per input (MAX_INPUT_CHARS)")
    assert "input[0]" not in message
    assert client.post("/v1/embeddings", json={"input": ["ok", "x" * 990]}).status_code == 200
    assert client.post("/v1/embeddings", json={**body, "instruction": "Rep: "}).status_code == 200  # 995


def test_openai_request_chars_over_many_inputs(minilm_registry):
    client = make_client(minilm_registry, MAX_REQUEST_CHARS="5000")
    body = {"input": ["word " * 90] * 10, "instruction": "i" * 60}  # 10 x (60 + 450)
    too_large(client.post("/v1/embeddings", json=body), "input",
              "input has 5100 characters as the model sees them (instruction included); "
              "at most 5000 per request (MAX_REQUEST_CHARS)")
    assert client.post("/v1/embeddings", json={"input": body["input"]}).status_code == 200  # 4500


def test_tei_prompt_name_and_request_chars(qwen_registry, minilm_registry):
    prompt = qwen_registry.first.text_encoder.prompts["query"]
    client = make_client(qwen_registry, MAX_INPUT_CHARS=str(len(prompt) + 100))
    body = {"inputs": ["a" * 100, "b" * 101], "prompt_name": "query"}
    too_large(client.post("/embed", json=body), "inputs", "inputs[1]", f"{len(prompt) + 101} characters",
              "prompt included", "MAX_INPUT_CHARS")
    assert client.post("/embed", json={"inputs": ["a" * 100, "b" * 101]}).status_code == 200
    client = make_client(minilm_registry, MAX_REQUEST_CHARS="1000")
    too_large(client.post("/embed", json={"inputs": ["x" * 300] * 4}), "inputs",
              "inputs has 1200 characters; at most 1000 per request (MAX_REQUEST_CHARS)")
    assert client.post("/embed", json={"inputs": ["x" * 250] * 4}).status_code == 200


def test_ollama_flat_errors_name_the_budget(minilm_registry):
    client = make_client(minilm_registry, MAX_REQUEST_CHARS="1000", MAX_INPUT_CHARS="600")
    resp = client.post("/api/embed", json={"input": ["x" * 300] * 4})
    message = too_large(resp, "input", "input has 1200 characters", "at most 1000 per request (MAX_REQUEST_CHARS)")
    assert resp.get_json() == {"error": message}
    resp = client.post("/api/embeddings", json={"prompt": "y" * 601})
    assert resp.get_json() == {"error": too_large(resp, "prompt", "prompt[0] has 601 characters", "MAX_INPUT_CHARS")}
    assert client.post("/api/embed", json={"input": ["x" * 250] * 4}).status_code == 200


def test_check_text_chars_counts_what_it_is_given():
    limits = RequestBudgets(max_client_batch_size=8, max_input_chars=10, max_request_chars=25, max_rerank_chunks=4)
    check_text_chars([10, 10], limits, "input", extra=5)  # exactly at both limits
    with pytest.raises(LimitExceeded, match=r"input\[1\] has 11 characters; at most 10 per input"):
        check_text_chars([10, 11], limits, "input")
    with pytest.raises(LimitExceeded, match="input has 26 characters as the model sees them"):
        check_text_chars([10, 10], limits, "input", "x", extra=6)


# ------------------------------------------------------------------ reranking
def test_pair_models_count_the_query_with_every_document(rr_registry, minilm_registry):
    query, docs = "q" * 200, ["d" * 100] * 10
    client = make_client(rr_registry, MAX_REQUEST_CHARS="3000")
    ok = client.post("/rerank", json={"query": query, "documents": docs, "model": "bert-ce"})  # 10 x (200 + 100)
    assert ok.status_code == 200, ok.get_json()
    too_large(client.post("/rerank", json={"query": query + "q", "documents": docs, "model": "bert-ce"}), "documents",
              "documents has 3010 characters as the model sees them (query counted with every document)",
              "at most 3000 per request (MAX_REQUEST_CHARS)")
    # Qwen3-Reranker: the query, the instruction and the pair template with every document.
    message = too_large(client.post("/rerank", json={"query": query, "documents": docs, "instruction": "i" * 20}),
                        "documents", "query and instruction counted with every document", "MAX_REQUEST_CHARS")
    assert int(message.split(" has ")[1].split()[0]) > 10 * (200 + 20 + 100)
    client = make_client(rr_registry, MAX_INPUT_CHARS="250")  # one pair: the query with one document
    too_large(client.post("/rerank", json={"query": "q" * 200, "documents": ["d" * 10, "d" * 51], "model": "bert-ce"}),
              "documents", "documents[1] has 251 characters as the model sees them (query included)", "MAX_INPUT_CHARS")
    # Ranking by embeddings embeds the query once: the same request fits.
    client = make_client(minilm_registry, MAX_REQUEST_CHARS="3000")
    assert client.post("/rerank", json={"query": query + "q", "documents": docs}).status_code == 200
    too_large(client.post("/rerank", json={"query": "q" * 1001, "documents": ["d" * 200] * 10}), "documents",
              "documents has 3001 characters as the model sees them (query included once)", "MAX_REQUEST_CHARS")


@pytest.mark.parametrize("model", [MINILM, "bert-ce", None])
def test_max_rerank_chunks_is_checked_before_any_forward_pass(minilm_registry, rr_registry, model):
    registry = minilm_registry if model == MINILM else rr_registry
    engine = registry.find(model) if model else registry.default(Capability.SCORE_PAIRS)
    client = make_client(registry, MAX_RERANK_CHUNKS="4")
    docs = ["alpha beta gamma delta " * 400, "epsilon zeta eta theta " * 400]
    before = (engine.batcher.stats.batches, engine.batcher.stats.items)
    body = {"query": "which letters?", "documents": docs, "max_chunks_per_doc": 3, **({"model": model} if model else {})}
    too_large(client.post("/rerank", json=body), "documents", "documents make 6 chunks with max_chunks_per_doc 3",
              "at most 4 per request (MAX_RERANK_CHUNKS)")
    assert (engine.batcher.stats.batches, engine.batcher.stats.items) == before  # no forward pass at all
    resp = client.post("/rerank", json={**body, "max_chunks_per_doc": 2})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["meta"]["billed_units"]["search_units"] == 1


# ------------------------------------------------------------------ MAX_QUEUE_SIZE
class SlowModel:
    """forward returns each item's first id after `delay` seconds."""

    name = "slow"
    dimension = 1

    def __init__(self, delay: float):
        self.lock = threading.Lock()
        self.delay = delay

    def forward(self, items):
        time.sleep(self.delay)
        return [[float(item.ids[0])] for item in items]


def test_the_queue_limit_holds_for_the_first_request_too():
    batcher = Batcher(SlowModel(0.3), BatchBounds(max_batch_size=2, max_batch_tokens=1000, max_queue_size=8),
                      observer=None, cpu_share=None)
    with pytest.raises(LimitExceeded, match=r"makes 9 items .* at most 8 fit in its queue \(MAX_QUEUE_SIZE\)"):
        batcher.run([TokenIds([i]) for i in range(9)])  # the queue is empty: it can never fit
    outcome = {}
    first = threading.Thread(target=lambda: outcome.setdefault("first", batcher.run([TokenIds([i]) for i in range(8)])))
    first.start()
    time.sleep(0.1)  # the first batch runs, 6 items wait
    with pytest.raises(Unavailable) as busy:
        batcher.run([TokenIds([i]) for i in range(3)])  # would fit an empty queue, not this one
    assert error_headers(busy.value)["Retry-After"] == "1"
    first.join(10)
    assert [row[0] for row in outcome["first"]] == list(range(8))
    assert batcher.run([TokenIds([42])])[0][0] == 42


def test_a_request_larger_than_the_queue_is_413_and_others_are_served(minilm_registry):
    client = small_queue(minilm_registry.first, 8)
    resp = client.post("/v1/embeddings", json={"input": [f"text {i}" for i in range(9)]})
    too_large(resp, None, "9 items", "at most 8", "MAX_QUEUE_SIZE")
    assert client.post("/v1/embeddings", json={"input": [f"text {i}" for i in range(8)]}).status_code == 200
    # Embedding rerank chunks: 3 documents in up to 4 chunks each are 12 items.
    docs = ["alpha beta gamma delta " * 400] * 3
    too_large(client.post("/rerank", json={"query": "q", "documents": docs, "max_chunks_per_doc": 4}), None,
              "12 items", "MAX_QUEUE_SIZE")
    assert client.post("/rerank", json={"query": "q", "documents": docs, "max_chunks_per_doc": 2}).status_code == 200
    assert client.post("/v1/embeddings", json={"input": "still served"}).status_code == 200


def test_pair_chunks_over_the_queue_are_refused(rr_registry):
    client = small_queue(rr_registry.find("bert-ce"), 8)
    docs = ["word " * 300] * 3  # a 64-token window: many chunks each
    too_large(client.post("/rerank", json={"query": "q", "documents": docs, "max_chunks_per_doc": 4}), None,
              "12 items", "MAX_QUEUE_SIZE")
    resp = client.post("/rerank", json={"query": "q", "documents": docs, "max_chunks_per_doc": 2})
    assert resp.status_code == 200 and len(resp.get_json()["results"]) == 3


# ------------------------------------------------------------------ bounded tokenisation: exactly the same tokens
PIECES = [
    "deep", "learning", "über", "naïve", "cafe\u0301", "ﬁne", "中文字符测试", "日本語のテキスト", "العربية",
    "русский", "😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "12345678901", "3.14159", "!!??", "...", "can't", "it's", "yes",
    "no", "yesterday", "<|im_start|>", "[SEP]", "x" * 150, "antidisestablishmentarianism", "\u200b", "tab\there",
    "ΑΣ", "İstanbul",
]
SEPARATORS = [
    " ", " ", " ", "", "\n", "  ", "\n\n", " \n ", "\t", "\r\n", " " * 40, "\n" + " " * 30 + "\n", "\u00a0", "\u3000",
]


def random_text(rng: random.Random, length: int) -> str:
    parts, size = [], 0
    while size < length:
        piece = rng.choice(PIECES) + rng.choice(SEPARATORS)
        parts.append(piece)
        size += len(piece)
    return "".join(parts)[:length]


def corpus(seed: int, count: int = 24) -> list[str]:
    """Long random texts, and the shapes that make a window grow or fall back: long whitespace
    runs at either end, no whitespace at all, a long digit run, one long word."""
    rng = random.Random(seed)
    texts = [random_text(rng, rng.randint(3_000, 30_000)) for _ in range(count)]
    body = random_text(rng, 8_000)
    texts += [
        " " * 6_000 + body, body + "\n" * 6_000, "\n \n" * 2_000 + body + " \t" * 3_000,
        "中文字符测试" * 1_500, "1234567890" * 1_000 + " " + body, body + " " + "9876543210" * 1_000,
        "x" * 20_000, "😀👍🏽" * 4_000, body.replace(" ", ""),
    ]
    return texts


def assert_windows_exact(tokenizer, texts, keeps=(8, 100, 300)) -> None:
    """Every window's truncated tokens equal the whole text's, on both sides, at several lengths."""
    concurrent = ConcurrentTokenizer(tokenizer)
    specials = concurrent.specials
    cut, tried = 0, 0
    for side in ("right", "left"):
        for keep in keeps:
            expected = concurrent(texts, truncation=True, max_length=keep + specials, side=side)["input_ids"]
            windows = concurrent.windows(texts, keep, side)
            got = concurrent(windows, truncation=True, max_length=keep + specials, side=side)["input_ids"]
            for index, (want, have) in enumerate(zip(expected, got)):
                assert want == have, (side, keep, index, texts[index][:80])
            cut, tried = cut + sum(len(w) < len(t) for w, t in zip(windows, texts)), tried + len(texts)
    assert cut >= tried // 2, "the windows should cut most texts"


def regex_bpe(pattern: str):
    """A byte-level BPE whose words come from a Split regex (the Qwen2 and Llama 3 layout)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    rng = random.Random(3)
    trainer = trainers.BpeTrainer(
        vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=["<|im_start|>"]
    )
    tok.train_from_iterator([random_text(rng, 400) for _ in range(300)], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok)


def metaspace_unigram():
    """A SentencePiece-style Unigram with a metaspace pre-tokenizer and NFKC (the T5 / XLM-R layout)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(" {2,}", " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    rng = random.Random(4)
    trainer = trainers.UnigramTrainer(vocab_size=500, special_tokens=["<unk>"], unk_token="<unk>")
    tok.train_from_iterator([random_text(rng, 400) for _ in range(300)], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")


QWEN2_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
LLAMA3_SPLIT = QWEN2_SPLIT.replace(r"|\p{N}|", r"|\p{N}{1,3}|")


def test_windows_give_the_whole_texts_tokens(minilm_path, tiny, rerankers):
    assert_windows_exact(AutoTokenizer.from_pretrained(minilm_path), corpus(1))
    for path in (tiny["qwen"], tiny["bert_cls"], rerankers["qwen3"], rerankers["xlmr"]):
        assert_windows_exact(AutoTokenizer.from_pretrained(path), corpus(2, count=12), keeps=(8, 200))
    for tokenizer in (regex_bpe(QWEN2_SPLIT), regex_bpe(LLAMA3_SPLIT), metaspace_unigram()):
        assert_windows_exact(tokenizer, corpus(5, count=12), keeps=(8, 200))


def test_a_window_that_cannot_be_proved_is_the_whole_text(minilm_path):
    concurrent = ConcurrentTokenizer(AutoTokenizer.from_pretrained(minilm_path))
    texts = ["a" * 50_000, "\n" * 40_000 + "tail words", "short text"]
    assert concurrent.windows(texts, 100, "right") == texts  # no word boundary, no tokens, too short
    assert concurrent.windows(texts[1:2], 100, "left")[0] == texts[1]  # too few tokens at all


def test_prepare_texts_matches_the_tokenizer_on_both_sides(minilm_registry, qwen_registry, minilm_path, tiny, monkeypatch):
    texts = corpus(11, count=16)
    for registry, path in ((minilm_registry, minilm_path), (qwen_registry, tiny["qwen"])):
        model = registry.first.text_encoder
        reference = AutoTokenizer.from_pretrained(path)
        for side in ("right", "left"):
            reference.truncation_side = side
            expected = reference(texts, truncation=True, max_length=model.max_length)["input_ids"]
            got = [item.ids for item in model.prepare_texts(texts, PromptChoice(), True, side)]
            assert got == expected, side
        prompt = PromptChoice(instruction="Given a question, find passages that answer it")
        prefix = model.resolve_prompt(prompt)
        reference.truncation_side = "right"
        expected = reference([prefix + t for t in texts], truncation=True, max_length=model.max_length)["input_ids"]
        assert [item.ids for item in model.prepare_texts(texts, prompt, True, "right")] == expected
        chunks = model.prepare_chunks(texts, PromptChoice(), 3)
        with monkeypatch.context() as patch:
            whole_texts(patch)
            assert chunks == model.prepare_chunks(texts, PromptChoice(), 3)


def whole_texts(patch) -> None:
    """Make ConcurrentTokenizer.windows return every text whole: the unbounded reference."""
    patch.setattr(ConcurrentTokenizer, "windows", lambda self, texts, keep, side="right": list(texts))


@pytest.mark.parametrize("name", ["bert-ce", "xlmr-ce", None])
def test_pair_models_prepare_the_same_items_from_windows(rr_registry, name, monkeypatch):
    engine = rr_registry.find(name) if name else rr_registry.default(Capability.SCORE_PAIRS)
    model = engine.model
    docs = corpus(13, count=8)
    cases = [("what is deep learning?", None, None), ("what is deep learning?", None, 3)]
    if model.takes_instruction:
        cases += [("q", "Judge " * 50, None), (random_text(random.Random(21), 3_000), None, 2)]
    for query, instruction, chunks in cases:
        got = model.prepare_pairs(query, docs, instruction, True, chunks)
        capped = engine.cap_tokens(docs, 100)
        with monkeypatch.context() as patch:
            whole_texts(patch)
            assert got == model.prepare_pairs(query, docs, instruction, True, chunks), (query[:20], chunks)
            assert capped == engine.cap_tokens(docs, 100)


@pytest.mark.parametrize("name", ["bert-ce", "xlmr-ce"])
def test_a_query_longer_than_the_window_is_cut_longest_first_as_the_tokenizer_does(rr_registry, rerankers, name):
    """Both texts are cut; the longer keeps the odd token (BERT's 61-token budget is odd). Sizes
    stay moderate: the tokenizer's own longest-first pairs every overflowing piece of one text
    with every piece of the other."""
    model = rr_registry.find(name).model
    reference = AutoTokenizer.from_pretrained(rerankers["bert" if name == "bert-ce" else "xlmr"])
    rng = random.Random(17)
    budget = model.max_length - reference.num_special_tokens_to_add(True)
    query = ""
    while len(reference(query, add_special_tokens=False)["input_ids"]) < budget + 40:
        query += random_text(rng, 40)
    docs = [random_text(rng, n) for n in (20, 60, 150, 250, 400, len(query), 4_000)]
    docs += [text[:4_000] for text in corpus(19, count=4)]
    expected = reference([query] * len(docs), docs, truncation="longest_first", max_length=model.max_length,
                         return_token_type_ids=True)
    for chunks in (None, 2):
        items = model.prepare_pairs(query, docs, None, True, chunks)
        assert [item.ids for item in items] == expected["input_ids"]
        if model.uses_type_ids:
            assert [item.type_ids for item in items] == expected["token_type_ids"]
        assert [item.owner for item in items] == list(range(len(docs)))


# ------------------------------------------------------------------ bounded tokenisation: cost
def english(rng: random.Random, length: int) -> str:
    words = ["the", "market", "fell", "sharply", "today", "while", "neural", "networks", "learn", "representations"]
    return " ".join(rng.choice(words) for _ in range(length // 5))[:length]


def best_of(runs: int, work) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def test_truncated_tokenising_costs_the_window_not_the_text(minilm_registry):
    model = minilm_registry.first.text_encoder
    rng = random.Random(5)
    long = [english(rng, 200_000) for _ in range(8)]
    short = [english(rng, 3_000) for _ in range(8)]
    for side in ("right", "left"):
        slow = best_of(3, lambda: model.prepare_texts(long, PromptChoice(), True, side))
        fast = best_of(3, lambda: model.prepare_texts(short, PromptChoice(), True, side))
        assert slow < 5 * fast, (side, slow, fast)


def test_a_small_request_is_served_while_a_budget_maximum_request_is_prepared(minilm_registry):
    client = make_client(minilm_registry)  # the default budgets
    limits = RequestBudgets.from_settings(Settings.from_mapping({"LOG_LEVEL": "WARNING"}))
    model = minilm_registry.first.text_encoder
    prompt = PromptChoice(instruction="Represent this sentence for searching relevant passages: ")
    prefix = len(model.resolve_prompt(prompt))
    rng = random.Random(9)
    each = limits.max_request_chars // limits.max_client_batch_size - prefix
    many = [english(rng, each) for _ in range(limits.max_client_batch_size)]
    count = limits.max_request_chars // limits.max_input_chars
    long = [english(rng, limits.max_input_chars - prefix) for _ in range(count)]
    for big in (many, long):
        check_text_chars([prefix + len(text) for text in big], limits, "input")  # within every budget
        stop, rounds = threading.Event(), []

        def prepare():
            deadline = time.perf_counter() + 20
            while not stop.is_set() and time.perf_counter() < deadline:
                model.prepare_texts(big, prompt, True, "right")
                rounds.append(1)

        worker = threading.Thread(target=prepare)
        worker.start()
        time.sleep(0.2)
        started = time.perf_counter()
        resp = client.post("/v1/embeddings", json={"input": "a short query"})
        waited = time.perf_counter() - started
        busy = worker.is_alive()
        stop.set()
        worker.join(30)
        assert resp.status_code == 200 and busy and waited < 2.0, (len(big), waited, busy)
