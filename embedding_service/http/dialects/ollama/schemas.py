"""Ollama's request schemas: `POST /api/embed`, `/api/embeddings` and `/api/show`."""

from __future__ import annotations

from typing import Annotated, Any, Optional, Union

from pydantic import Field, StrictBool, StrictFloat, StrictStr

from ....domain.errors import InvalidInput
from ...schemas import SERVED_MODEL_NAME, TRUNCATE, JsonInt, NonEmptyStr, PositiveInt, Strict, TextInput, text_list_check, strict_with


class _OllamaRequest(Strict):
    """Fields every Ollama embedding route takes. `keep_alive` and `options` are accepted and have
    no effect: models stay loaded for the life of the worker."""

    model: Optional[StrictStr] = None
    keep_alive: Optional[Union[StrictStr, JsonInt, StrictFloat]] = None
    options: Optional[dict[str, Any]] = None


class OllamaShowRequest(Strict):
    """`POST /api/show` (Ollama): `model`, or `name` as older clients send it (not both); none
    names the default text model. `verbose` is accepted and changes nothing."""

    model_config = strict_with({"not": {"required": ["model", "name"], "properties": {
        "model": {"type": "string"}, "name": {"type": "string"}}}})

    model: Optional[StrictStr] = None
    name: Annotated[Optional[StrictStr], Field(json_schema_extra={SERVED_MODEL_NAME: True})] = None
    verbose: Optional[StrictBool] = None

    def label(self) -> Optional[str]:
        if self.model is not None and self.name is not None:
            raise InvalidInput('send "model" or "name", not both', param="name")
        return self.model if self.model is not None else self.name


class OllamaEmbedRequest(_OllamaRequest):
    """`POST /api/embed` (Ollama)."""

    input: TextInput
    truncate: Annotated[StrictBool, Field(description=TRUNCATE)] = True
    dimensions: Optional[PositiveInt] = None

    _input = text_list_check("input")


class OllamaEmbeddingsRequest(_OllamaRequest):
    """`POST /api/embeddings` (Ollama's legacy route)."""

    prompt: NonEmptyStr

    _prompt = text_list_check("prompt")
