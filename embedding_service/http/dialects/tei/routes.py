"""The rest of TEI's router (Hugging Face text-embeddings-inference): `POST /`, `/similarity`,
`/tokenize`, `/decode`, `/embed_all`. (`POST /embed` and `/rerank`, which TEI shares with other
dialects, are `http/shared_paths.py`; `GET /info` is `dialects/ops`.)

`POST /` answers as TEI's router does, by the request's shape rather than by the served model's
kind, since several models may be served: `inputs` as a string or a list embeds (as `/embed`),
`inputs` as `{"source_sentence", "sentences"}` scores similarity (as `/similarity`, what
`huggingface_hub.InferenceClient.sentence_similarity` posts to a bare host), and `query` with
`texts` reranks in TEI's shape (TEI's `/` for a reranker), with the reranker or, without one, the
default scorer. Errors are the nested `{"error": {...}}` body of every non-Ollama route.
"""

from __future__ import annotations

from typing import Any, Callable

from ....domain.errors import InvalidInput, ServiceError
from ....inference.engine import Capability
from ....operations.model_names import resolve
from ....models.prompts import PromptChoice
from ....operations.rerank import Ranking, rerank
from .responses import SCORES, TEXTS, TOKEN_VECTORS, TEIRootResponse, TEISparseVectors, TEITokens, sparse_body
from ...schemas import parse
from .schemas import (
    TEIEmbedRequest, TEIDecodeRequest, TEIEmbedAllRequest, TEIEmbedSparseRequest, TEIPredictRequest, TEIRerankRequest,
    TEIRootPredictRequest, TEISimilarityRequest, TEITokenizeRequest,
)
from ....operations.classify import classify
from ....operations.embed import embed_text, similarity
from ....operations.tokens import decode, embed_tokens, tokenize
from ...json_io import engines, images, json_body, json_response, budgets, raw_json_response
from ...budgets import ITEMS, SPARSE_LIMITS, BodyLimit, Budget, TokensOut, sparse_budget
from ....operations.retrieval import embed_sparse
from ...routing import EMBED_ERRORS, TEXT_LIMITS, ApiBlueprint
from ...errors import ErrorStyle

bp = ApiBlueprint("tei", __name__, tag="TEI", error_style=ErrorStyle.TEI)

TOKEN_ERRORS = (400, 404, 413, 415, 503)
TOKENIZE_LIMITS = ("MAX_CONTENT_LENGTH", "MAX_CLIENT_BATCH_SIZE", "MAX_INPUT_CHARS", "MAX_REQUEST_CHARS", "MAX_RESPONSE_TOKENS")
DECODE_LIMITS = ("MAX_CONTENT_LENGTH", "MAX_CLIENT_BATCH_SIZE", "MAX_INPUT_CHARS", "MAX_REQUEST_CHARS", "MAX_RESPONSE_TOKENS")
EMBED_ALL_LIMITS = TOKENIZE_LIMITS[:-1] + ("MAX_EMBED_ALL_TOKENS",)



def tei_ranks(ranking: Ranking, texts: list, return_text: bool) -> list[dict]:
    """TEI's rerank answer: `[{"index", "score", "text"?}]`, best first."""
    rows = []
    for index in ranking.order:
        row = {"index": index, "score": float(ranking.scores[index])}
        if return_text:
            row["text"] = texts[index]
        rows.append(row)
    return rows


def tei_inputs(value: Any) -> list:
    """TEI's `Input` as a list of inputs, each a text or a list of token ids: a string or a flat id
    list is one input."""
    if isinstance(value, str) or (isinstance(value, list) and value and isinstance(value[0], int)):
        return [value]
    return list(value)


def by_kind(inputs: list, texts: Callable[[list], tuple[list, int]], ids: Callable[[list], tuple[list, int]]) -> tuple[list, int]:
    """(one result per input, in order; tokens fed): the texts through `texts`, the token-id lists
    through `ids` (fed as given, no prompt), each kind in one call."""
    out: list = [None] * len(inputs)
    tokens = 0
    for run, rows in ((texts, [i for i, x in enumerate(inputs) if isinstance(x, str)]),
                      (ids, [i for i, x in enumerate(inputs) if not isinstance(x, str)])):
        if rows:
            results, fed = run([inputs[i] for i in rows])
            for i, result in zip(rows, results):
                out[i] = result
            tokens += fed
    return out, tokens


def embed_inputs(body: Any):
    """TEI's `/embed` with `inputs` (texts or token ids) -> `[[float]]`, one row per input."""
    req = parse(TEIEmbedRequest, body)
    options = dict(model_name=req.model, normalize=req.normalize, dimensions=req.dimensions, truncate=req.truncate,
                   direction=req.truncation_direction, param="inputs")

    def texts(rows: list) -> tuple[list, int]:
        result = embed_text(engines(), budgets(), texts=rows, prompt=PromptChoice(prompt_name=req.prompt_name),
                            chunked=req.chunked, **options)
        return list(result.vectors), result.tokens

    def ids(rows: list) -> tuple[list, int]:
        result = embed_text(engines(), budgets(), token_ids=rows, **options)
        return list(result.vectors), result.tokens

    vectors, _ = by_kind(tei_inputs(req.inputs), texts, ids)
    return json_response(vectors)


def _similarity(body: Any):
    req = parse(TEISimilarityRequest, body)
    truncate, direction = req.options()
    scores = similarity(
        engines(), budgets(), model_name=req.model, source=req.inputs.source_sentence, sentences=req.inputs.sentences,
        truncate=truncate, direction=direction, prompt=PromptChoice(prompt_name=req.prompt_name),
    )
    return json_response(scores)


def _rerank(body: Any):
    req = parse(TEIRerankRequest, body)
    ranking = rerank(
        engines(), budgets(), images(), req.query, req.texts, field="texts", model=req.model, raw_scores=req.raw_scores,
        truncate=req.truncate, direction=req.truncation_direction,
    )
    return json_response(tei_ranks(ranking, req.texts, req.return_text))


@bp.operation(
    "POST", "/", summary="TEI's root route: embed, similarity, rerank or predict, by the request's shape and model",
    request=(TEIEmbedRequest, TEISimilarityRequest, TEIRerankRequest, TEIRootPredictRequest), response=TEIRootResponse,
    errors=EMBED_ERRORS, limits=TEXT_LIMITS, budget=Budget(BodyLimit.TEXT, "text", {"inputs": ITEMS}),
)
def root():
    """`{"inputs": str | [str], ...}` -> `[[float]]` (as `/embed`), or, with `parameters` or
    `raw_scores`, or for a classifier (named, or served where no text model is),
    `[{"score", "label"}]` (as `/predict`); `{"inputs": {"source_sentence",
    "sentences"}, ...}` -> `[float]` (as `/similarity`); `{"query", "texts", ...}` -> TEI's
    `[{"index", "score", "text"?}]`."""
    body = json_body()
    if isinstance(body, dict):
        if "query" in body or "texts" in body:
            return _rerank(body)
        if isinstance(body.get("inputs"), dict):
            return _similarity(body)
        if "inputs" in body:
            predicting = "parameters" in body or "raw_scores" in body or _gets_classifier(body)
            return predict(body) if predicting else embed_inputs(body)
        raise InvalidInput(
            'send "inputs" (a text or a list: embeddings), "inputs": {"source_sentence", "sentences"} (similarity) '
            'or "query" with "texts" (rerank)', param="inputs",
        )
    raise InvalidInput("the request body must be a JSON object", param=None)


@bp.operation(
    "POST", "/similarity", summary="TEI similarity: cosine of each sentence to the source sentence",
    request=TEISimilarityRequest, response=SCORES, errors=EMBED_ERRORS, limits=TEXT_LIMITS,
    budget=Budget(BodyLimit.TEXT, "text", {"inputs": {"source_sentence": "a cat", "sentences": ITEMS}}, extra_items=1),
)
def similarity_route():
    """`{"inputs": {"source_sentence", "sentences"}, "truncate"?, "truncation_direction"?,
    "prompt_name"?, "parameters"?, "model"?}` -> `[float]`, one cosine similarity per sentence."""
    return _similarity(json_body())


@bp.operation(
    "POST", "/tokenize", summary="TEI tokenize: tokens with ids, text, special flag and byte offsets",
    request=TEITokenizeRequest, response=TEITokens, errors=TOKEN_ERRORS, limits=TOKENIZE_LIMITS,
    budget=Budget(BodyLimit.TEXT, "text", {"inputs": ITEMS}, output=TokensOut("inputs", "max_response_tokens")),
)
def tokenize_route():
    """`{"inputs": str | [str], "add_special_tokens"?, "prompt_name"?, "model"?}` ->
    `[[{"id", "text", "special", "start", "stop"}]]`, one list per input."""
    req = parse(TEITokenizeRequest, json_body())
    texts = [req.inputs] if isinstance(req.inputs, str) else req.inputs
    return json_response(tokenize(
        engines(), budgets(), model_name=req.model, texts=texts, add_special_tokens=req.add_special_tokens,
        prompt_name=req.prompt_name,
    ))


@bp.operation(
    "POST", "/decode", summary="TEI decode: token ids back to text",
    request=TEIDecodeRequest, response=TEXTS, errors=TOKEN_ERRORS, limits=DECODE_LIMITS,
    budget=Budget(BodyLimit.TEXT, "ids", {"ids": ITEMS}, output=TokensOut("ids", "max_response_tokens", ids=True)),
)
def decode_route():
    """`{"ids": [int] | [[int]], "skip_special_tokens"?, "model"?}` -> `[str]`, one per list of ids."""
    req = parse(TEIDecodeRequest, json_body())
    return json_response(decode(engines(), budgets(), model_name=req.model, ids=req.ids, skip_special_tokens=req.skip_special_tokens))


@bp.operation(
    "POST", "/embed_all", summary="TEI embed_all: one vector per token (not pooled, not normalised)",
    request=TEIEmbedAllRequest, response=TOKEN_VECTORS, errors=EMBED_ERRORS, limits=EMBED_ALL_LIMITS, models="tokens",
    budget=Budget(
        BodyLimit.TEXT, "text", {"inputs": ITEMS}, output=TokensOut("inputs", "max_embed_all_tokens", window=True)
    ),
)
def embed_all_route():
    """`{"inputs": str | [str], "truncate"?, "truncation_direction"?, "prompt_name"?, "model"?}` ->
    `[[[float]]]`: per input, the model's last hidden state of each token fed (special tokens
    included)."""
    req = parse(TEIEmbedAllRequest, json_body())
    options = dict(model_name=req.model, truncate=req.truncate, direction=req.truncation_direction)
    vectors, _ = by_kind(
        tei_inputs(req.inputs),
        lambda rows: (embed_tokens(engines(), budgets(), texts=rows, prompt_name=req.prompt_name, **options)[0], 0),
        lambda rows: (embed_tokens(engines(), budgets(), texts=(), token_ids=rows, **options)[0], 0),
    )
    return json_response(vectors)



@bp.operation(
    "POST", "/embed_sparse", summary="TEI embed_sparse: lexical weights (SPLADE, BGE-M3), the non-zero entries",
    request=TEIEmbedSparseRequest, response=TEISparseVectors, errors=EMBED_ERRORS, limits=SPARSE_LIMITS, models="sparse",
    budget=sparse_budget("inputs"),
)
def embed_sparse_route():
    """`{"inputs": str | [str], "truncate"?, "truncation_direction"?, "prompt_name"?, "model"?}` ->
    `[[{"index", "value"}]]`: per input, its non-zero weights by token id, ascending."""
    req = parse(TEIEmbedSparseRequest, json_body())
    options = dict(model_name=req.model, truncate=req.truncate, direction=req.truncation_direction, param="inputs")
    vectors, _ = by_kind(
        tei_inputs(req.inputs),
        lambda rows: (embed_sparse(engines(), budgets(), texts=rows, prompt=PromptChoice(prompt_name=req.prompt_name),
                                   **options).vectors, 0),
        lambda rows: (embed_sparse(engines(), budgets(), texts=(), token_ids=rows, **options).vectors, 0),
    )
    return raw_json_response(sparse_body(vectors))


#: `/predict`: per input, its labels and scores, best first (a list of them per input for a batch).
PREDICTIONS = {"anyOf": [
    {"type": "array", "items": {"type": "object", "properties": {"score": {"type": "number"}, "label": {"type": "string"}},
                                "required": ["score", "label"]}},
    {"type": "array", "items": {"type": "array", "items": {"type": "object", "properties": {
        "score": {"type": "number"}, "label": {"type": "string"}}, "required": ["score", "label"]}}},
]}


@bp.operation(
    "POST", "/predict", summary="TEI predict: a score per label for a text, a pair, or a batch of them (classifiers)",
    request=TEIPredictRequest, response=PREDICTIONS, errors=EMBED_ERRORS, limits=TEXT_LIMITS, models="classifier",
    budget=Budget(BodyLimit.TEXT, "text", {"inputs": ITEMS}, capability="classifier"),
)
def predict_route():
    return predict(json_body())


def _gets_classifier(body: dict) -> bool:
    """Whether `POST /` with `inputs` goes to a classifier (TEI's root route predicts for one): the
    model named is a classifier, or none is named and no text model but a classifier is served."""
    reg = engines()
    name = body.get("model")
    try:
        if isinstance(name, str) and name:
            return reg.find(resolve(reg, name)).can(Capability.CLASSIFY)
    except ServiceError:
        return False  # the embedding route answers with its own error
    return not reg.has(Capability.EMBED_TEXT) and reg.has(Capability.CLASSIFY)


def predict(body: Any):
    """`{"inputs": str | [str, str] | [[str] | [str, str]], "raw_scores"?, "truncate"?, "truncation_direction"?,
    "model"?, "parameters"?: {"function_to_apply"?, "top_k"?}}` -> `[{"score", "label"}]` best first for one
    input, a list of them per input for a batch (the Inference API's `parameters`, as
    `huggingface_hub.InferenceClient.text_classification` sends them)."""
    req = parse(TEIPredictRequest, body)
    value = req.inputs
    single = isinstance(value, str) or (len(value) == 2 and all(isinstance(v, str) for v in value))
    rows = [value] if single else value
    inputs = [row if isinstance(row, str) else (row[0] if len(row) == 1 else (row[0], row[1])) for row in rows]
    options = req.parameters
    result = classify(engines(), budgets(), model_name=req.model, inputs=inputs, raw_scores=req.raw_scores,
                      truncate=req.truncate, direction=req.truncation_direction, param="inputs",
                      function_to_apply=options.function_to_apply if options else None)
    top_k = options.top_k if options and options.top_k else None
    ranked = [result.ranked(row)[:top_k] for row in range(len(inputs))]
    return json_response(ranked[0] if single else ranked)
