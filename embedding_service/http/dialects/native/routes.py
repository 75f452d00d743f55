"""`POST /v1/sparse_embeddings`: lexical weights as `{"indices": [int], "values": [float]}` per
input (Qdrant's `SparseVector`, Milvus' sparse rows and Pinecone's `sparse_values` take this
shape as it is), token strings on request, in OpenAI's list envelope with `usage`."""

from __future__ import annotations

from pydantic import BaseModel
from typing import Literal, Optional

from ....models.prompts import PromptChoice
from ....operations.retrieval import embed_sparse
from ...budgets import SPARSE_LIMITS, sparse_budget
from ...json_io import budgets, engines, json_body, json_response
from ...routing import EMBED_ERRORS, ApiBlueprint
from ...schemas import parse
from .schemas import SparseEmbeddingRequest

bp = ApiBlueprint("retrieval", __name__, tag="Retrieval")


class SparseItem(BaseModel):
    object: Literal["sparse_embedding"]
    index: int
    indices: list[int]
    values: list[float]
    tokens: Optional[list[str]] = None


class SparseUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class SparseEmbeddingResponse(BaseModel):
    object: Literal["list"]
    data: list[SparseItem]
    model: str
    usage: SparseUsage


@bp.operation(
    "POST", "/v1/sparse_embeddings", summary="Sparse embeddings as {indices, values} (SPLADE, BGE-M3)",
    request=SparseEmbeddingRequest, response=SparseEmbeddingResponse, errors=EMBED_ERRORS, limits=SPARSE_LIMITS,
    models="sparse", budget=sparse_budget("input"),
)
def sparse_embeddings():
    """`{"input", "model"?, "input_type"?, "instruction"?, "prompt_name"?, "truncate"?, "return_tokens"?}` ->
    `{"object": "list", "data": [{"object": "sparse_embedding", "index", "indices", "values", "tokens"?}], "model", "usage"}`."""
    req = parse(SparseEmbeddingRequest, json_body())
    texts = [req.input] if isinstance(req.input, str) else req.input
    result = embed_sparse(
        engines(), budgets(), model_name=req.model, texts=texts, truncate=req.truncate, direction=req.truncation_direction,
        prompt=PromptChoice(input_type=req.input_type, instruction=req.instruction, prompt_name=req.prompt_name),
        return_tokens=req.return_tokens, param="input",
    )
    data = []
    for index, vector in enumerate(result.vectors):
        item = {"object": "sparse_embedding", "index": index, "indices": vector.indices, "values": vector.values}
        if result.tokens is not None:
            item["tokens"] = result.tokens[index]
        data.append(item)
    return json_response({"object": "list", "data": data, "model": result.model.name,
                          "usage": {"prompt_tokens": result.tokens_fed, "total_tokens": result.tokens_fed}})
