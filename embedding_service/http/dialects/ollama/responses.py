"""Ollama's response bodies: `/api/embed`, `/api/embeddings` and the model catalogue."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class OllamaEmbedResponse(BaseModel):
    model: str
    embeddings: list[list[float]]
    total_duration: int
    load_duration: int
    prompt_eval_count: int


class OllamaEmbeddingsResponse(BaseModel):
    embedding: list[float]


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
