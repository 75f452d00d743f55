"""vLLM's `/pooling` request (its completion-style `PoolingRequest`)."""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import StrictBool, StrictStr

from ...schemas import MODEL_KIND, TEXTS, JsonInt, PositiveInt, Strict, TextInput, TokenInput, strict_with


class PoolingRequest(Strict):
    """`POST /pooling` (vLLM): `{"model"?, "input", "task"?, "normalize"?, "dimensions"?,
    "encoding_format"?, "truncate_prompt_tokens"?, "user"?, "priority"?}`, plus `input_type`
    (`query` or `document`: how a ColBERT model prepares the texts, and the query prompt).
    `classify` is :class:`PoolingClassifyRequest`, `token_classify` :class:`PoolingTokenClassifyRequest`."""

    #: token_embed takes texts (token ids are for embed).
    model_config = strict_with({"not": {"required": ["task"], "properties": {"task": {"const": "token_embed"},
                                                                              "input": {"not": TEXTS}}}})

    input: Union[TextInput, TokenInput]
    model: Optional[StrictStr] = None
    #: `embed`: one pooled vector per input; `token_embed`: one vector per token (a multi-vector
    #: model's token vectors, else the model's last hidden states). Default: `embed` for a model
    #: that embeds text, `token_embed` for a multi-vector model.
    task: Optional[Literal["embed", "token_embed"]] = None
    normalize: Optional[StrictBool] = None
    dimensions: Optional[PositiveInt] = None
    encoding_format: Literal["float", "base64"] = "float"
    #: vLLM's truncation: -1 cuts to the model's window (the default here too); no other value is served.
    truncate_prompt_tokens: Optional[Literal[-1]] = None
    user: Optional[StrictStr] = None
    priority: Optional[JsonInt] = None
    input_type: Optional[Literal["query", "document"]] = None


#: A classify or token_classify request names its task, or a model of its kind (whose default task
#: it is); without either, `/pooling` reads the request as `embed` or `token_embed`.
TASK_OR_MODEL = [{"required": ["task"]}, {"required": ["model"], "not": {"properties": {"model": {"enum": ["", None]}}}}]


class PoolingTokenClassifyRequest(Strict):
    """`POST /pooling` with `task: "token_classify"` (or a token classifier named without a task):
    `{"model"?, "input": str | [str], "task"?, "use_activation"?, "truncate_prompt_tokens"?,
    "user"?, "priority"?}`; each input's label probabilities per token (special tokens included),
    in id2label order. `use_activation: false` gives the logits."""

    model_config = strict_with({MODEL_KIND: "token-classifier", "anyOf": TASK_OR_MODEL})

    input: TextInput
    model: Optional[StrictStr] = None
    task: Literal["token_classify"] = "token_classify"
    use_activation: Optional[StrictBool] = None
    truncate_prompt_tokens: Optional[Literal[-1]] = None
    user: Optional[StrictStr] = None
    priority: Optional[JsonInt] = None


class PoolingClassifyRequest(Strict):
    """`POST /pooling` with `task: "classify"` (or a classifier named without a task):
    `{"model"?, "input": str | [str], "task"?, "truncate_prompt_tokens"?, "user"?, "priority"?}`;
    each input's label probabilities, in id2label order."""

    model_config = strict_with({MODEL_KIND: "classifier", "anyOf": TASK_OR_MODEL})

    input: TextInput
    model: Optional[StrictStr] = None
    task: Literal["classify"] = "classify"
    truncate_prompt_tokens: Optional[Literal[-1]] = None
    user: Optional[StrictStr] = None
    priority: Optional[JsonInt] = None
