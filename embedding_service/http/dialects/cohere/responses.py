"""Cohere's response bodies: rerank and embed."""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field


class RerankResult(BaseModel):
    index: int
    relevance_score: float
    document: Optional[dict[str, Any]] = None


class ApiVersion(BaseModel):
    version: str


class BilledUnits(BaseModel):
    search_units: int


class TokenCounts(BaseModel):
    """Cohere's `meta.tokens`: tokens read and written."""

    input_tokens: int
    output_tokens: int


class RerankMeta(BaseModel):
    api_version: ApiVersion
    billed_units: BilledUnits
    tokens: TokenCounts


class RerankUsage(BaseModel):
    """vLLM's and Jina's token counts of a rerank request."""

    prompt_tokens: int
    total_tokens: int


class RerankResponse(BaseModel):
    id: str
    model: str
    results: list[RerankResult]
    meta: RerankMeta
    usage: RerankUsage


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
    #: The same as `meta.api_version`; Cohere's published document requires it at the top too.
    api_version: ApiVersion
    meta: CohereEmbedMeta
