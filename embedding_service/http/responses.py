"""Response bodies of every documented route, as pydantic models (their JSON Schemas go into
/openapi.json); `VECTORS` is the bare `[[float]]` body of the TEI and SigLIP service routes."""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, RootModel


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


# ------------------------------------------------------------------ TEI's other routes
#: `/similarity`: one cosine similarity per sentence.
SCORES = {"type": "array", "items": {"type": "number"}}
#: `/decode`: one string per list of ids.
TEXTS = {"type": "array", "items": {"type": "string"}}
#: `/embed_all`: per input, one vector per token.
TOKEN_VECTORS = {"type": "array", "items": VECTORS}


class TEIToken(BaseModel):
    """One token of `/tokenize`: `start`/`stop` are byte offsets into the UTF-8 text as the model
    sees it (null for special tokens), as TEI gives them."""

    id: int
    text: str
    special: bool
    start: Optional[int]
    stop: Optional[int]


class TEITokens(RootModel[list[list[TEIToken]]]):
    """`/tokenize`: the tokens of each input."""


class TEIRank(BaseModel):
    """One row of TEI's rerank answer; `text` only with `return_text`."""

    index: int
    score: float
    text: Optional[str] = None


class TEIRanks(RootModel[list[TEIRank]]):
    """TEI's rerank answer: `[{"index", "score", "text"?}]`, best first."""


class PlainRerankResponse(RootModel[Union[RerankResponse, list[TEIRank]]]):
    """`/rerank`: Cohere's body, or TEI's list for TEI's request (see schemas.RerankRequest.tei_shaped)."""


class TEIRootResponse(RootModel[Union[list[list[float]], list[float], list[TEIRank]]]):
    """`POST /`: as `/embed` (vectors), `/similarity` (scores) or TEI's rerank, by the request's shape."""


# ------------------------------------------------------------------ Ollama's catalogue
class OllamaDetails(BaseModel):
    parent_model: str
    format: str
    family: str
    families: list[str]
    parameter_size: str
    quantization_level: str


class OllamaModel(BaseModel):
    """One model of `/api/tags`."""

    name: str
    model: str
    modified_at: str
    size: int
    digest: str
    details: OllamaDetails


class OllamaTags(BaseModel):
    models: list[OllamaModel]


class OllamaRunning(OllamaModel):
    """One model of `/api/ps`."""

    expires_at: str
    size_vram: int
    context_length: int


class OllamaProcesses(BaseModel):
    models: list[OllamaRunning]


class OllamaShowResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    modelfile: str
    parameters: str
    template: str
    details: OllamaDetails
    model_info: dict[str, Any]
    capabilities: list[str]
    modified_at: str


class OllamaVersion(BaseModel):
    version: str


# ------------------------------------------------------------------ Cohere's embed
class CohereEmbeddingsByType(BaseModel):
    """Only the types asked for are present; `binary`/`ubinary` rows are ceil(dimension / 8) bytes."""

    model_config = ConfigDict(populate_by_name=True)
    float_: Optional[list[list[float]]] = Field(None, alias="float")
    int8: Optional[list[list[int]]] = None
    uint8: Optional[list[list[int]]] = None
    binary: Optional[list[list[int]]] = None
    ubinary: Optional[list[list[int]]] = None
    base64: Optional[list[str]] = None


class CohereEmbedMeta(BaseModel):
    model_config = ConfigDict(extra="allow")
    api_version: ApiVersion
    billed_units: dict[str, int]


class CohereEmbedResponse(BaseModel):
    """`/v1/embed` and `/v2/embed`: `embeddings` is `[[float]]` with `response_type`
    "embeddings_floats" (v1 without `embedding_types`), else an object by type."""

    id: str
    response_type: Literal["embeddings_floats", "embeddings_by_type"]
    embeddings: Union[list[list[float]], CohereEmbeddingsByType]
    texts: list[str]
    meta: CohereEmbedMeta
