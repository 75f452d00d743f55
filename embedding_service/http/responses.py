"""Response bodies every dialect shares, as pydantic models (their JSON Schemas go into
/openapi.json): the error bodies and `VECTORS`, the bare `[[float]]` body of the TEI and SigLIP
service routes. Each dialect's own response models are in its folder."""

from __future__ import annotations

from typing import Optional, Union

from pydantic import BaseModel


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


VECTORS = {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}
