"""vLLM dialect: `POST /pooling`, vLLM's generic pooling route, for the tasks this service's
models serve: `embed` (one pooled vector per input, as `/v1/embeddings`), `token_embed` (one
vector per token: a multi-vector model's token vectors, BGE-M3's ColBERT or PyLate's, else a text
model's last hidden states), each cut to `dimensions` where given and L2-normalised unless
`normalize` is false, `classify` (a classifier's label probabilities, id2label order) and
`token_classify` (a token classifier's label probabilities for every token fed, special tokens
included). `/classify` and `/score` are scoring.py.
"""

from __future__ import annotations

import base64
import time
import uuid

import numpy as np

from ....domain.errors import InvalidInput, ServiceError
from ....operations.model_names import resolve
from ....inference.engine import Capability
from ....models.prompts import PromptChoice
from ....operations.classify import classify, classify_tokens
from ....operations.embed import check_dimensions, embed_text
from ....operations.retrieval import embed_multi_vector, finish_vectors, pooling_engine
from ....operations.tokens import embed_tokens
from ...budgets import ITEMS, BodyLimit, Budget, RetrievalOut
from ...json_io import budgets, engines, json_body, json_response
from ...routing import EMBED_ERRORS, TEXT_LIMITS, ApiBlueprint
from ...errors import ErrorStyle
from ...schemas import parse, texts_or_ids
from .responses import PoolingResponse
from .schemas import PoolingClassifyRequest, PoolingRequest, PoolingTokenClassifyRequest

bp = ApiBlueprint("vllm", __name__, tag="vLLM", error_style=ErrorStyle.VLLM)

POOLING_LIMITS = TEXT_LIMITS + ("MAX_TOKEN_VECTOR_VALUES",)
#: The tasks served: vLLM's pooling tasks.
TASKS = ("embed", "token_embed", "classify", "token_classify")


def _b64(rows: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(rows, dtype="<f4").tobytes()).decode("ascii")


@bp.operation(
    "POST", "/pooling",
    summary="vLLM pooling: `embed` (a vector per input), `token_embed` (a vector per token), `classify`, `token_classify`",
    request=(PoolingRequest, PoolingClassifyRequest, PoolingTokenClassifyRequest), response=PoolingResponse, errors=EMBED_ERRORS, limits=POOLING_LIMITS, models="pooling",
    budget=Budget(
        BodyLimit.TEXT, "text", {"input": ITEMS, "task": "token_embed"},
        output=RetrievalOut("input", "max_token_vector_values", output="multi-vector",
                            when=("task", ("token_embed", "token_classify"), "embed")),
        capability="multi-vector",
    ),
)
def pooling():
    """`{"model"?, "input", "task"?, "normalize"?, "dimensions"?, "encoding_format"?, "input_type"?}` ->
    `{"id", "object": "list", "created", "model", "data": [{"index", "object": "pooling", "data"}], "usage"}`."""
    body = json_body()
    reg = engines()
    if isinstance(body, dict) and body.get("task") not in (None, *TASKS):
        raise InvalidInput(f"task must be one of {', '.join(TASKS)}; got {str(body.get('task'))[:40]!r}", param="task")
    if isinstance(body, dict) and (body.get("task") == "classify" or (body.get("task") is None and _names(reg, body, Capability.CLASSIFY))):
        return _classify(parse(PoolingClassifyRequest, body))
    if isinstance(body, dict) and (body.get("task") == "token_classify"
                                   or (body.get("task") is None and _names(reg, body, Capability.TOKEN_CLASSIFY))):
        return _token_classify(parse(PoolingTokenClassifyRequest, body))
    req = parse(PoolingRequest, body)
    engine = pooling_engine(reg, req.model)
    task = req.task or ("embed" if engine.can(Capability.EMBED_TEXT) else "token_embed")
    normalize = True if req.normalize is None else req.normalize
    prompt = PromptChoice(input_type=req.input_type)
    single = isinstance(req.input, str)
    if task == "embed":
        texts, token_ids = texts_or_ids(req.input)
        result = embed_text(reg, budgets(), model_name=engine.name, texts=texts, token_ids=token_ids, normalize=normalize,
                            dimensions=req.dimensions, prompt=prompt, param="input")
        rows, tokens = list(result.vectors), result.tokens
    else:  # token_embed
        if not single and req.input and not isinstance(req.input[0], str):
            raise InvalidInput("task token_embed takes text input (a string or a list of strings)", param="input")
        texts = [req.input] if single else list(req.input)
        if engine.can(Capability.MULTI_VECTOR):
            out = embed_multi_vector(reg, budgets(), model_name=engine.name, texts=texts, is_query=req.input_type == "query",
                                     prompt=prompt, normalize=normalize, dimensions=req.dimensions)
            rows, tokens = out.vectors, out.tokens_fed
        elif engine.can(Capability.TOKEN_STATES):
            check_dimensions(req.dimensions, engine)
            states, _, tokens = embed_tokens(reg, budgets(), model_name=engine.name, texts=texts, param="input")
            rows = [finish_vectors(state, req.dimensions, normalize) for state in states]
        else:
            raise InvalidInput(f"model {engine.name!r} is a {engine.model.kind} model and gives no token embeddings",
                               param="model")
    return _answer(engine.name, rows, tokens, _b64 if req.encoding_format == "base64" else (lambda row: row))


def _answer(model: str, rows: list, tokens: int, encode=lambda row: row):
    """vLLM's pooling list: one `data` per input."""
    return json_response({
        "id": f"pool-{uuid.uuid4().hex}", "object": "list", "created": int(time.time()), "model": model,
        "data": [{"index": i, "object": "pooling", "data": encode(row)} for i, row in enumerate(rows)],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0, "prompt_tokens_details": None},
    })


def _names(reg, body: dict, capability: Capability) -> bool:
    """Whether the request names a model with `capability` (a classifier's default task is
    classify, a token classifier's token_classify)."""
    name = body.get("model")
    try:
        return isinstance(name, str) and bool(name) and reg.find(resolve(reg, name)).can(capability)
    except ServiceError:
        return False  # the pooling request answers with its own error


def _classify(req: PoolingClassifyRequest):
    """`task: classify`: each input's label probabilities (the named classifier, else the first)."""
    texts = [req.input] if isinstance(req.input, str) else list(req.input)
    result = classify(engines(), budgets(), model_name=req.model, inputs=texts, param="input")
    return _answer(result.model.name, list(result.scores.astype(np.float32)), result.tokens)


def _token_classify(req: PoolingTokenClassifyRequest):
    """`task: token_classify`: each input's label probabilities per token, (tokens, labels) (the
    named token classifier, else the first); `use_activation: false` gives the logits."""
    texts = [req.input] if isinstance(req.input, str) else list(req.input)
    result = classify_tokens(engines(), budgets(), model_name=req.model, texts=texts, param="input",
                             raw_scores=req.use_activation is False)
    return _answer(result.model.name, [rows.astype(np.float32) for rows in result.scores], result.tokens)
