"""The TEI and Cohere request schemas (dialects/tei/schemas.py, dialects/cohere/schemas.py) on
their own: what each accepts, what it refuses, and the field each refusal names."""

from __future__ import annotations

import pytest

from embedding_service.domain.errors import InvalidInput
from embedding_service.http.dialects.cohere.schemas import CohereEmbedV1Request, CohereEmbedV2Request, RerankRequest
from embedding_service.http.dialects.tei.schemas import TEIDecodeRequest, TEIEmbedRequest, TEISimilarityRequest
from embedding_service.http.schemas import parse


def refused(schema, body) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse(schema, body)
    return caught.value


def test_tei_embed_defaults_and_direction_in_any_case():
    req = parse(TEIEmbedRequest, {"inputs": "a", "truncation_direction": "Left"})
    assert (req.truncate, req.truncation_direction, req.normalize, req.dimensions) == (True, "left", True, None)
    assert refused(TEIEmbedRequest, {"inputs": []}).param == "inputs"
    assert refused(TEIEmbedRequest, {"inputs": ["a", ""]}).message == "inputs[1] is an empty string"
    assert refused(TEIEmbedRequest, {"inputs": "a", "pooling": "cls"}).message == "unknown field 'pooling'"


def test_tei_similarity_options_once_at_the_top_or_in_parameters():
    body = {"inputs": {"source_sentence": "a", "sentences": ["b", "c"]}}
    assert parse(TEISimilarityRequest, {**body, "parameters": {"truncate": False}}).options() == (False, "right")
    assert parse(TEISimilarityRequest, {**body, "truncation_direction": "left"}).options() == (True, "left")
    req = parse(TEISimilarityRequest, {**body, "truncate": True, "parameters": {"truncate": False}})
    with pytest.raises(InvalidInput, match="truncate is given twice") as caught:
        req.options()
    assert caught.value.param == "truncate"


def test_tei_decode_takes_one_list_or_many():
    assert parse(TEIDecodeRequest, {"ids": [1, 2]}).ids == [1, 2]
    assert parse(TEIDecodeRequest, {"ids": [[1], [2, 3]]}).ids == [[1], [2, 3]]
    assert refused(TEIDecodeRequest, {"ids": [-1]}).param == "ids"


def test_cohere_embed_takes_exactly_one_kind_of_input():
    entries, field = parse(CohereEmbedV1Request, {"texts": ["a", "b"]}).entries()
    assert (entries, field) == ([("text", "a"), ("text", "b")], "texts")
    both = parse(CohereEmbedV1Request, {"texts": ["a"], "images": ["data:image/png;base64,AAAA"]})
    with pytest.raises(InvalidInput, match='send exactly one of "texts", "images"'):
        both.entries()
    v2 = parse(CohereEmbedV2Request, {"inputs": [{"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]})
    assert v2.entries() == ([("text", "a b")], "inputs")  # text parts joined with a space
    assert refused(CohereEmbedV1Request, {"texts": ["a"], "embedding_types": ["int4"]}).param == "embedding_types"


def test_rerank_request_tells_tei_from_cohere():
    assert parse(RerankRequest, {"query": "q", "texts": ["a"], "raw_scores": True}).tei_shaped()
    assert not parse(RerankRequest, {"query": "q", "texts": ["a"]}).tei_shaped()  # the plain API's request
    assert not parse(RerankRequest, {"query": "q", "documents": ["a"], "return_documents": True}).tei_shaped()
    assert refused(RerankRequest, {"query": "   ", "documents": ["a"]}).param == "query"
    assert refused(RerankRequest, {"query": "q", "documents": ["a"], "top_n": 0}).message == "top_n must be at least 1; got 0"
