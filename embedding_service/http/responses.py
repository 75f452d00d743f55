"""Response bodies every dialect shares, as pydantic models (their JSON Schemas go into
/openapi.json): the error bodies and `VECTORS`, the bare `[[float]]` body of the TEI and SigLIP
service routes. Each dialect's own response models are in its folder."""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: Optional[str]
    code: Union[int, str]


class ErrorResponse(BaseModel):
    """The nested error body: `{"error": {"message", "type", "param", "code"}}` (OpenAI's routes,
    the service's own, and vLLM's with vLLM's types)."""

    error: ErrorDetail


class TEIError(BaseModel):
    """The error body on TEI's routes, as TEI answers: `{"error": str, "error_type": str}`."""

    error: str
    error_type: Literal["Unhealthy", "Backend", "Overloaded", "Validation", "Tokenizer", "Empty"]


class CohereError(BaseModel):
    """The error body on Cohere's routes, as Cohere's API answers: `{"id": str, "message": str}`
    (`id` is the request id, also in `X-Request-ID`)."""

    id: str
    message: str


class OllamaError(BaseModel):
    """The error body on the Ollama routes, flat as Ollama answers: `{"error": str}`."""

    error: str


VECTORS = {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}
