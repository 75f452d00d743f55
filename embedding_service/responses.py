"""Response bodies of every documented route, as pydantic models (their JSON Schemas go into
/openapi.json); `VECTORS` is the bare `[[float]]` body of the TEI and SigLIP service routes."""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: Optional[str]
    code: Union[int, str]


class ErrorResponse(BaseModel):
    """The error body on every route except Ollama's: `{"error": {"message", "type", "param", "code"}}`."""

    error: ErrorDetail


class OllamaError(BaseModel):
    """The error body on the Ollama routes, flat as Ollama answers: `{"error": str}`."""

    error: str


class EmbeddingItem(BaseModel):
    object: Literal["embedding"]
    index: int
    embedding: Union[list[float], str]


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class OpenAIEmbeddingResponse(BaseModel):
    object: Literal["list"]
    data: list[EmbeddingItem]
    model: str
    usage: Usage


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


class OllamaEmbedResponse(BaseModel):
    model: str
    embeddings: list[list[float]]
    total_duration: int
    load_duration: int
    prompt_eval_count: int


class OllamaEmbeddingsResponse(BaseModel):
    embedding: list[float]


class RerankResult(BaseModel):
    index: int
    relevance_score: float
    document: Optional[dict[str, Any]] = None


class ApiVersion(BaseModel):
    version: str


class BilledUnits(BaseModel):
    search_units: int


class Tokens(BaseModel):
    input_tokens: int
    output_tokens: int


class RerankMeta(BaseModel):
    api_version: ApiVersion
    billed_units: BilledUnits
    tokens: Tokens


class RerankResponse(BaseModel):
    id: str
    model: str
    results: list[RerankResult]
    meta: RerankMeta


class Health(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: Literal["ok"]
    model: Optional[str]
    device: str
    cuda_available: bool
    pid: int
    phase: str


class Ready(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str
    pid: int
    models: list[str]


class Index(BaseModel):
    service: str
    version: str
    models: list[str]
    routes: list[str]


class Info(BaseModel):
    model_config = ConfigDict(extra="allow")
    model_id: str
    model_dtype: str
    model_type: str
    max_input_length: int
    max_batch_size: int
    max_client_batch_size: int
    models: list[dict[str, Any]]


#: The bare `[[float, ...], ...]` body: one vector per input.

VECTORS = {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}
