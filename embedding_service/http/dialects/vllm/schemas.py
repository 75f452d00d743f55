"""vLLM's `/pooling` request (its completion-style `PoolingRequest`)."""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import StrictBool, StrictStr

from ...schemas import TEXTS, JsonInt, PositiveInt, Strict, TextInput, TokenInput, strict_with


class PoolingRequest(Strict):
    """`POST /pooling` (vLLM): `{"model"?, "input", "task"?, "normalize"?, "dimensions"?,
    "encoding_format"?, "truncate_prompt_tokens"?, "user"?, "priority"?}`, plus `input_type`
    (`query` or `document`: how a ColBERT model prepares the texts, and the query prompt).
    `classify` gives a classifier's label probabilities; `token_classify` is not served here."""

    #: token_embed and classify take texts (token ids are for embed).
    model_config = strict_with({"not": {"required": ["task"], "properties": {"task": {"enum": ["token_embed", "classify"]},
                                                                              "input": {"not": TEXTS}}}})

    input: Union[TextInput, TokenInput]
    model: Optional[StrictStr] = None
    #: `embed`: one pooled vector per input; `token_embed`: one vector per token (a multi-vector
    #: model's token vectors, else the model's last hidden states). Default: `embed` for a model
    #: that embeds text, `token_embed` for a multi-vector model.
    task: Optional[Literal["embed", "token_embed", "classify"]] = None
    normalize: Optional[StrictBool] = None
    dimensions: Optional[PositiveInt] = None
    encoding_format: Literal["float", "base64"] = "float"
    #: vLLM's truncation: -1 cuts to the model's window (the default here too); no other value is served.
    truncate_prompt_tokens: Optional[Literal[-1]] = None
    user: Optional[StrictStr] = None
    priority: Optional[JsonInt] = None
    input_type: Optional[Literal["query", "document"]] = None
