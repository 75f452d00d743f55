"""Request schemas of Cohere's API: `POST /v1/embed` and `POST /v2/embed` (the fields the
official `cohere` SDK sends), and reranking (`RerankRequest`, below). Unknown fields are refused
(400 naming the field).

A request embeds exactly one of: `texts`; `images` (data URIs, base64, http(s) URLs or allowed
local paths; a multimodal model must be served); or, on v2, `inputs`, each input's `content`
being text parts (`{"type": "text", "text"}`, joined with a space into one text) or one image
part (`{"type": "image_url", "image_url": {"url"}}`). Several parts fused into one embedding,
text with an image, is refused (400): no served model fuses them.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Field, StrictBool, StrictStr, field_validator

from ....domain.errors import InvalidInput
from ...schemas import (
    DIRECTION,
    IMAGE_DOCUMENT,
    IMAGES,
    NEEDS_IMAGE_MODEL,
    NON_EMPTY,
    RANK_FIELDS,
    TruncateFlag,
    Direction,
    JsonInt,
    NonEmptyList,
    NonEmptyStr,
    PositiveInt,
    QueryText,
    Strict,
    text_list_check,
    exactly_one,
    strict_with,
)

EmbeddingType = Literal["float", "int8", "uint8", "binary", "ubinary", "base64"]
InputType = Literal["search_document", "search_query", "classification", "clustering", "image"]
Truncate = Literal["NONE", "START", "END"]
EMBEDDING_TYPES = "the types to return (see README: int8/uint8/binary/ubinary quantize each vector on its own)"
TRUNCATE_TEXT = "END cuts an over-long text's end, START its start; NONE refuses it with 422"

_TEXT_PART = {
    "type": "object", "required": ["type", "text"], "additionalProperties": False,
    "properties": {"type": {"const": "text"}, "text": NON_EMPTY},
}
_IMAGE_PART = {
    "type": "object", "required": ["type", "image_url"], "additionalProperties": False,
    "properties": {
        "type": {"const": "image_url"},
        "image_url": {"type": "object", "required": ["url"], "additionalProperties": False, "properties": {"url": {"type": "string"}}},
    },
}
_TEXT_INPUT = {
    "type": "object", "required": ["content"], "additionalProperties": False,
    "properties": {"content": {"type": "array", "minItems": 1, "items": _TEXT_PART}},
}
_IMAGE_INPUT = {
    NEEDS_IMAGE_MODEL: True, "type": "object", "required": ["content"], "additionalProperties": False,
    "properties": {"content": {"type": "array", "minItems": 1, "maxItems": 1, "items": _IMAGE_PART}},
}
_INPUTS = {"type": "array", "minItems": 1, "items": {"anyOf": [_TEXT_INPUT, _IMAGE_INPUT]}}


def _only(field: str, *others: str, **extra: Any) -> dict:
    """A branch: `field` given, none of `others`."""
    return {"required": [field], "not": {"anyOf": [{"required": [other]} for other in others]}, **extra}


def _inputs_schema(schema: dict) -> None:
    schema.clear()
    schema.update(copy.deepcopy(_INPUTS))


class _CohereEmbed(Strict):
    texts: NonEmptyList = None  # type: ignore[assignment]  # omitted is fine, null is not
    images: Annotated[NonEmptyList, Field(description=IMAGES)] = None  # type: ignore[assignment]
    model: Optional[StrictStr] = None
    input_type: Optional[InputType] = None
    embedding_types: Annotated[Optional[list[EmbeddingType]], Field(min_length=1, description=EMBEDDING_TYPES)] = None
    truncate: Annotated[Truncate, Field(description=TRUNCATE_TEXT)] = "END"

    _lists = text_list_check("texts", "images")

    def entries(self) -> tuple[list[tuple[str, str]], str]:
        """[("text" | "image", content)] in order, and the field they came in."""
        given = [name for name in ("texts", "images", "inputs") if getattr(self, name, None) is not None]
        if len(given) != 1:
            fields = ", ".join(f'"{name}"' for name in ("texts", "images", "inputs") if name in type(self).model_fields)
            raise InvalidInput(f"send exactly one of {fields}", param=given[1] if len(given) > 1 else "texts")
        if self.texts is not None:
            return [("text", text) for text in self.texts], "texts"
        if self.images is not None:
            return [("image", image) for image in self.images], "images"
        return list(self.inputs), "inputs"  # type: ignore[attr-defined]


class CohereEmbedV1Request(_CohereEmbed):
    """`POST /v1/embed` (Cohere v1): `{"texts" | "images", "model"?, "input_type"?,
    "embedding_types"?, "truncate"?}`."""

    model_config = strict_with({"anyOf": [_only("texts", "images", title="texts"),
                                           _only("images", "texts", title="images", **{NEEDS_IMAGE_MODEL: True})]})


class CohereEmbedV2Request(_CohereEmbed):
    """`POST /v2/embed` (Cohere v2): v1's fields, `inputs`, `output_dimension` (Matryoshka, 1 to
    the model's dimension), `max_tokens` (each text cut to that many tokens, per `truncate`) and
    `priority` (lower is served first, as vLLM's field)."""

    model_config = strict_with({"anyOf": [
        _only("texts", "images", "inputs", title="texts"),
        _only("images", "texts", "inputs", title="images", **{NEEDS_IMAGE_MODEL: True}),
        _only("inputs", "texts", "images", title="text inputs", properties={"inputs": {"items": _TEXT_INPUT}}),
        _only("inputs", "texts", "images", title="inputs with images", **{NEEDS_IMAGE_MODEL: True}),
    ]})

    inputs: Annotated[list[Any], Field(json_schema_extra=_inputs_schema)] = None  # type: ignore[assignment]
    output_dimension: Optional[PositiveInt] = None
    max_tokens: Optional[PositiveInt] = None
    priority: Optional[JsonInt] = None

    @field_validator("inputs", mode="before")
    @classmethod
    def _inputs(cls, value: Any) -> Any:
        if value is None:
            return value
        if not isinstance(value, list) or not value:
            raise ValueError("inputs must be a non-empty list of {\"content\": [...]} objects")
        return [_input(item, index) for index, item in enumerate(value)]


def _input(item: Any, index: int) -> tuple[str, str]:
    """One v2 input as ("text", the text parts joined with a space) or ("image", the URL);
    raises ValueError naming it."""
    where = f"inputs[{index}]"
    if not isinstance(item, dict) or set(item) != {"content"}:
        raise ValueError(f'{where} must be {{"content": [parts]}}')
    parts = item["content"]
    if not isinstance(parts, list) or not parts:
        raise ValueError(f"{where}.content must be a non-empty list of parts")
    texts, urls = [], []
    for number, part in enumerate(parts):
        at = f"{where}.content[{number}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and set(part) == {"type", "text"} and isinstance(part["text"], str) and part["text"]:
            texts.append(part["text"])
        elif (kind == "image_url" and set(part) == {"type", "image_url"} and isinstance(part["image_url"], dict)
              and set(part["image_url"]) == {"url"} and isinstance(part["image_url"]["url"], str)):
            urls.append(part["image_url"]["url"])
        else:
            raise ValueError(f'{at} must be {{"type": "text", "text": non-empty string}} or {{"type": "image_url", "image_url": {{"url"}}}}')
    if urls and (texts or len(urls) > 1):
        raise ValueError(f"{where}.content: an input is text parts or one image; no served model fuses several into one embedding")
    return ("image", urls[0]) if urls else ("text", " ".join(texts))


DocumentInput = Union[NonEmptyStr, dict[str, Any]]
#: Documents as ranking reads them: a string, `{"text": str}` or `{"image": str}` (other keys
#: ride along and come back with `return_documents`)...
_TEXT_DOCUMENT = {"type": "object", "required": ["text"], "properties": {"text": NON_EMPTY}}
_IMAGE_DOCUMENT = {NEEDS_IMAGE_MODEL: True, **IMAGE_DOCUMENT}
#: ... or, with `rank_fields`, a string or any object (read through the named fields).
_DOCUMENT_SHAPES = {
    "anyOf": [
        {
            "title": "documents as given",
            "properties": {
                "rank_fields": {"anyOf": [{"type": "null"}, {"type": "array", "maxItems": 0}]},
                "documents": {"items": {"anyOf": [NON_EMPTY, _TEXT_DOCUMENT, _IMAGE_DOCUMENT]}},
            },
        },
        {
            "title": "strings, with rank_fields",
            "required": ["rank_fields"],
            "properties": {
                "rank_fields": {"type": "array", "minItems": 1},
                "documents": {"items": {"anyOf": [NON_EMPTY, {"type": "object"}]}},
            },
        },
    ]
}
#: `return_documents` and `return_text` are one switch: both given, they must agree.
_ONE_SWITCH = {
    "not": {
        "anyOf": [
            {
                "required": ["return_documents", "return_text"],
                "properties": {"return_documents": {"const": yes}, "return_text": {"const": not yes}},
            }
            for yes in (True, False)
        ]
    }
}


#: Fields only TEI's rerank request has (with `texts`), and the one only vLLM's has.
TEI_ONLY_FIELDS = frozenset({"truncation_direction", "raw_scores", "return_text", "truncate"})
VLLM_ONLY_FIELDS = frozenset({"truncate_prompt_tokens", "use_activation", "softmax", "activation"})


def rerank_dialect(body: Any) -> Literal["tei", "vllm", "cohere"]:
    """Whose rerank request the JSON `body` is, before it is validated: TEI's (`texts`, not
    `documents`, with a field only TEI has), vLLM's (`truncate_prompt_tokens`), else Cohere's
    (the plain API's bare `{"query", "texts"}` included)."""
    if not isinstance(body, dict):
        return "cohere"
    if "texts" in body and "documents" not in body and TEI_ONLY_FIELDS & body.keys():
        return "tei"
    return "vllm" if VLLM_ONLY_FIELDS & body.keys() else "cohere"


#: vLLM's switch of the score activation (`use_activation`; `softmax` and `activation` are its
#: deprecated names): false gives the raw scores, as `raw_scores: true` does. One of these and
#: `raw_scores` may be sent, not two.
ACTIVATION_FIELDS = ("use_activation", "softmax", "activation")
SCORE_SWITCHES = ("raw_scores", *ACTIVATION_FIELDS)
_ONE_SCORE_SWITCH = {"not": {"anyOf": [{"required": [a, b]} for i, a in enumerate(SCORE_SWITCHES) for b in SCORE_SWITCHES[i + 1:]]}}


class RerankRequest(Strict):
    """`POST /rerank`, `/v1/rerank`, `/v2/rerank` (Cohere; `texts` accepted in place of
    `documents`; TEI's `return_text`, `truncate` and `truncation_direction`). `priority`: lower is
    served first (vLLM's field). On `/rerank`, `texts` with one of TEI's own fields
    (`truncation_direction`, `raw_scores`, `return_text`, `truncate`) is TEI's request (see :meth:`tei_shaped`)."""

    model_config = strict_with(exactly_one("documents", "texts"), _ONE_SWITCH, _DOCUMENT_SHAPES, _ONE_SCORE_SWITCH)

    query: QueryText
    documents: Annotated[list[DocumentInput], Field(min_length=1)] = None  # type: ignore[assignment]
    texts: NonEmptyList = None  # type: ignore[assignment]
    top_n: Optional[PositiveInt] = None
    return_documents: Optional[StrictBool] = None
    return_text: Optional[StrictBool] = None
    instruction: Optional[StrictStr] = None
    model: Optional[StrictStr] = None
    raw_scores: StrictBool = False
    truncate: TruncateFlag = True
    truncation_direction: Annotated[Direction, Field(description=DIRECTION)] = "right"
    max_chunks_per_doc: Optional[PositiveInt] = None
    max_tokens_per_doc: Optional[PositiveInt] = None
    rank_fields: Annotated[Optional[list[StrictStr]], Field(description=RANK_FIELDS)] = None
    priority: Optional[JsonInt] = None
    #: vLLM's truncation: -1 cuts to the model's window (what `truncate` does by default).
    truncate_prompt_tokens: Optional[Literal[-1]] = None
    #: vLLM's: false gives raw scores (logits), as `raw_scores: true`; `softmax` and `activation`
    #: are its older names.
    use_activation: Optional[StrictBool] = None
    softmax: Optional[StrictBool] = None
    activation: Optional[StrictBool] = None

    @field_validator("top_n", "max_chunks_per_doc", "max_tokens_per_doc", mode="before")
    @classmethod
    def _positive(cls, value: Any, info) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise ValueError(f"{info.field_name} must be at least 1; got {value}")
        return value

    _documents = text_list_check("documents", "texts")

    def wants_raw_scores(self) -> bool:
        """`raw_scores`, or vLLM's `use_activation` (or `softmax`, `activation`) false. raises
        InvalidInput when more than one of them is sent."""
        sent = [name for name in SCORE_SWITCHES if name in self.model_fields_set]
        if len(sent) > 1:
            raise InvalidInput(f"send one of {', '.join(SCORE_SWITCHES)}, not {' and '.join(sent)}", param=sent[1])
        return self.raw_scores or any(getattr(self, name) is False for name in ACTIVATION_FIELDS)

    def tei_shaped(self) -> bool:
        """TEI's rerank request: `texts` (not `documents`) with one of the fields only TEI has."""
        return self.texts is not None and bool(TEI_ONLY_FIELDS & self.model_fields_set)

    def items(self) -> tuple[list, str]:
        """The documents and the field they came in (`documents` or `texts`)."""
        if (self.documents is None) == (self.texts is None):
            raise InvalidInput('send exactly one of "documents" or "texts"', param="documents")
        docs, field = (self.documents, "documents") if self.documents is not None else (self.texts, "texts")
        if not docs:
            raise InvalidInput(f"{field} must not be an empty list", param=field)
        return docs, field
