"""operations/rerank.py and operations/tokens.py on the real MiniLM, without HTTP: how documents
are read, ordered and cut, and what tokenising and decoding give back."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import load_registry
from embedding_service.config.settings import Settings
from embedding_service.domain.errors import InvalidInput, LimitExceeded
from embedding_service.operations.rerank import rerank
from embedding_service.operations.state import RequestBudgets
from embedding_service.operations.tokens import decode, embed_tokens, tokenize

BUDGETS = RequestBudgets(max_client_batch_size=8, max_input_chars=200, max_request_chars=1000, max_rerank_chunks=16,
                         max_embed_all_tokens=64)


@pytest.fixture(scope="module")
def engines():
    return load_registry(Settings.from_mapping({"LOG_LEVEL": "WARNING"}))


def test_rerank_orders_best_first_with_ties_by_index_and_cuts_to_top_n(engines):
    docs = ["the cat sat on the mat", "stock prices fell sharply", "the cat sat on the mat", "a kitten on a rug"]
    ranking = rerank(engines, BUDGETS, None, "where did the cat sit?", docs)
    assert ranking.order[:2] == [0, 2]  # identical documents tie: the lower index first
    assert ranking.scores[0] == ranking.scores[2] and ranking.order[-1] == 1
    assert np.all((ranking.scores >= 0) & (ranking.scores <= 1))  # cosine mapped to 0..1
    top = rerank(engines, BUDGETS, None, "where did the cat sit?", docs, top_n=2)
    assert top.order == ranking.order[:2]
    raw = rerank(engines, BUDGETS, None, "where did the cat sit?", docs, raw_scores=True)
    np.testing.assert_allclose((raw.scores + 1) / 2, ranking.scores, atol=1e-6)


def test_rerank_reads_objects_through_rank_fields(engines):
    docs = [{"title": "cats", "body": "the cat sat on the mat"}, {"title": "markets"}, {"other": 1}]
    fields = rerank(engines, BUDGETS, None, "cat", docs, rank_fields=["title", "body"])
    plain = rerank(engines, BUDGETS, None, "cat", ["title: cats\nbody: the cat sat on the mat", "title: markets"])
    np.testing.assert_allclose(fields.scores[:2], plain.scores, atol=1e-6)
    with pytest.raises(InvalidInput, match=r"documents\[1\] is an empty string"):
        rerank(engines, BUDGETS, None, "cat", ["a", ""])


def test_rerank_counts_documents_and_characters_before_any_work(engines):
    with pytest.raises(LimitExceeded, match="MAX_CLIENT_BATCH_SIZE"):
        rerank(engines, BUDGETS, None, "q", ["d"] * 9)
    with pytest.raises(LimitExceeded, match="MAX_INPUT_CHARS"):
        rerank(engines, BUDGETS, None, "q", ["x" * 201])


def test_tokenize_gives_offsets_into_the_text_and_decode_inverts_it(engines):
    rows = tokenize(engines, BUDGETS, model_name=None, texts=["Hello world"])
    tokens = rows[0]
    assert tokens[0]["special"] and tokens[-1]["special"]  # [CLS] ... [SEP]
    words = [t for t in tokens if not t["special"]]
    assert [("Hello world"[t["start"]:t["stop"]]).lower() for t in words] == ["hello", "world"]
    ids = [t["id"] for t in tokens]
    assert decode(engines, BUDGETS, model_name=None, ids=ids) == ["hello world"]
    with pytest.raises(InvalidInput, match="outside the vocabulary"):
        decode(engines, BUDGETS, model_name=None, ids=[10**9])


def test_embed_tokens_gives_one_row_per_token_within_its_budget(engines):
    states, engine, total = embed_tokens(engines, BUDGETS, model_name=None, texts=["a cat", "a dog sat"])
    assert [s.shape[0] for s in states] == [4, 5] and total == 9  # [CLS] words [SEP]
    assert states[0].shape[1] == engine.model.dimension
    with pytest.raises(LimitExceeded, match="MAX_EMBED_ALL_TOKENS"):
        embed_tokens(engines, BUDGETS, model_name=None, texts=["cat " * 35, "dog " * 35])  # 37 + 37 > 64


def test_max_tokens_cuts_the_text_itself_on_a_token_boundary(engines):
    """Cohere's max_tokens and max_tokens_per_doc keep a substring of the text, not a decoding of
    its tokens (which MiniLM's uncased tokenizer would lower-case and respace)."""
    engine = engines.first
    text = "Hello, World! How are you?"  # hello , world ! how are you ?
    assert engine.cap_tokens([text], 3) == ["Hello, World"]
    assert engine.cap_tokens([text], 3, "left") == ["are you?"]
    assert engine.cap_tokens([text], 50) == [text]
    long = "Alpha beta. " * 400 + "Last Words Here"  # long enough for the windowed path
    assert engine.cap_tokens([long], 5) == ["Alpha beta. Alpha beta"]  # alpha beta . alpha beta
    assert engine.cap_tokens([long], 3, "left") == ["Last Words Here"]
