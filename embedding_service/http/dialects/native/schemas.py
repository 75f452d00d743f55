"""`POST /v1/sparse_embeddings`: the service's own sparse request."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field, StrictBool, StrictStr

from ...schemas import TRUNCATE, Direction, JsonInt, Strict, TextInput, strict_with, text_list_check


class SparseEmbeddingRequest(Strict):
    """`{"input": str | [str], "model"?, "input_type"?, "instruction"?, "prompt_name"?, "truncate"?,
    "truncation_direction"?, "return_tokens"?, "priority"?}`."""

    #: What the model refuses besides the types: an instruction for documents, or beside a prompt name.
    model_config = strict_with({"allOf": [
        {"not": {"required": ["instruction", "input_type"],
                 "properties": {"instruction": {"type": "string"}, "input_type": {"const": "document"}}}},
        {"not": {"required": ["instruction", "prompt_name"],
                 "properties": {"instruction": {"type": "string"}, "prompt_name": {"type": "string"}}}},
    ]})

    input: TextInput
    model: Optional[StrictStr] = None
    input_type: Optional[Literal["query", "document"]] = None
    instruction: Optional[StrictStr] = None
    prompt_name: Optional[StrictStr] = None
    truncate: Annotated[StrictBool, Field(description=TRUNCATE)] = True
    truncation_direction: Direction = "right"
    #: Each entry's token string too (the id decoded alone, as FlagEmbedding's `convert_id_to_token`).
    return_tokens: StrictBool = False
    priority: Optional[JsonInt] = None

    _input = text_list_check("input")
