"""OpenAI's request schema: `POST /v1/embeddings` and `/embeddings`."""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import StrictBool, StrictStr, field_validator

from ...schemas import INPUT_SHAPES, NEEDS_IMAGE_MODEL, TEXTS, JsonInt, PositiveInt, Strict, TextInput, TokenInput, check_text_list, strict_with


class OpenAIEmbeddingRequest(Strict):
    """`POST /v1/embeddings` and `/embeddings` (OpenAI), plus `instruction` (a query instruction
    for instruction-tuned models such as Qwen3-Embedding), `input_type`, `modality: "image"` and vLLM's `priority`.

    The JSON schema says what the view and the models refuse besides the types: an instruction
    with `input_type: "document"` for texts; with `modality: "image"`, token ids, an instruction
    or an input type."""

    model_config = strict_with(
        {
            "anyOf": [
                {
                    "title": "text",
                    "properties": {"modality": {"const": "text"}},
                    "not": {
                        "required": ["instruction", "input_type"],
                        "properties": {
                            "instruction": {"type": "string"},
                            "input_type": {"const": "document"},
                            "input": TEXTS,  # token ids take no prompt: the instruction is not used
                        },
                    },
                },
                {
                    "title": "images",
                    NEEDS_IMAGE_MODEL: True,
                    "required": ["modality"],
                    "properties": {
                        "modality": {"const": "image"},
                        "input": TEXTS,
                        "instruction": {"type": "null"},
                        "input_type": {"type": "null"},
                    },
                },
            ]
        }
    )

    input: Union[TextInput, TokenInput]
    model: Optional[StrictStr] = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Optional[PositiveInt] = None
    user: Optional[StrictStr] = None
    instruction: Optional[StrictStr] = None
    input_type: Optional[Literal["query", "document"]] = None
    modality: Literal["text", "image"] = "text"
    #: vLLM's field: lower is served first (default 0); an API key's priority is a floor.
    priority: Optional[JsonInt] = None
    #: A text longer than the model's window embedded in overlapping windows pooled into one vector
    #: (token-weighted mean, vLLM's chunked processing); default: CHUNKED_EMBEDDINGS.
    chunked: Optional[StrictBool] = None

    @field_validator("input", mode="before")
    @classmethod
    def _input(cls, value: Any) -> Any:
        if not isinstance(value, (str, list)):
            raise ValueError(f"input must be {INPUT_SHAPES}")
        return check_text_list(value, "input")
