"""Request schemas (pydantic v2), one per route family; views call :func:`parse`.

Unknown fields are rejected (400 naming the field) so a client never believes an option took
effect when it did not. Limits that depend on configuration (`MAX_CLIENT_BATCH_SIZE`, model
dimensions) are checked in `embedding_service.operations.embed`, not here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Type, TypeVar, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from ..domain.errors import InvalidInput

T = TypeVar("T", bound=BaseModel)

def _integral(value: Any) -> Any:
    """JSON Schema counts 173.0 as an integer; so do we (never booleans or strings)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The constraints below show in /openapi.json; the before-validators reject the same inputs first,
# with messages that name the field and the index.
# (A bound goes inside the before-validator, or the JSON schema loses it: `"ge"`, not `"minimum"`.)
JsonInt = Annotated[StrictInt, BeforeValidator(_integral)]
NonEmptyStr = Annotated[StrictStr, Field(min_length=1)]
NonEmptyList = Annotated[list[NonEmptyStr], Field(min_length=1)]
TokenIds = Annotated[list[Annotated[StrictInt, Field(ge=0), BeforeValidator(_integral)]], Field(min_length=1)]
TextInput = Union[NonEmptyStr, NonEmptyList]
TokenInput = Union[TokenIds, Annotated[list[TokenIds], Field(min_length=1)]]
PositiveInt = Annotated[StrictInt, Field(ge=1), BeforeValidator(_integral)]
INPUT_SHAPES = "a string, a list of strings, a list of token ids or a list of lists of token ids"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


# ------------------------------------------------------------- what the JSON schema says besides
# Constraints between fields that pydantic's types cannot spell, added to a model's JSON schema so
# that /openapi.json describes exactly the requests `parse` and the service accept (the views and
# the service enforce them; see each model). Configuration-dependent limits are filled in per
# deployment by `openapi._tighten`.

#: Marks a request model, or a branch of a schema, that only a deployment serving an image model
#: accepts: `openapi._tighten` drops it from deployments without one.
NEEDS_IMAGE_MODEL = "x-requires-image-model"
#: Marks a property, besides `model`, that names a served model: `openapi._tighten` lists the names.
SERVED_MODEL_NAME = "x-served-model-name"
#: Set on a request model whose `model` may name other models than its route's (`Operation.models`).
MODEL_KIND = "x-model-kind"
_NON_EMPTY = {"type": "string", "minLength": 1}
_TEXTS = {"anyOf": [_NON_EMPTY, {"type": "array", "items": _NON_EMPTY, "minItems": 1}]}
#: What `str.strip()` removes (every `str.isspace()` character): a query must hold something else.
#: Spelled out because JSON Schema's `\s` (ECMA-262) is another set.
PYTHON_WHITESPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def _nonblank_query(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise ValueError("query is an empty string")
    return value


#: A rerank query: a string holding something other than whitespace.
QueryText = Annotated[
    StrictStr, Field(json_schema_extra={"pattern": f"[^{PYTHON_WHITESPACE}]"}), BeforeValidator(_nonblank_query)
]
#: What no schema can state, said in the fields' descriptions.
TRUNCATE = "false: an input longer than the model's window (in tokens) is refused with 422"
IMAGES = (
    "data URIs, base64, http(s) URLs or allowed local paths; one that is not an allowed, decodable image "
    "in an allowed format is refused (400, 403, 413, 415 or 422)"
)
DIRECTION = "the side an over-long document is cut on; pair rerankers (cross-encoders, Qwen3-Reranker) cut the end only"
RANK_FIELDS = (
    "read object documents as `name: value` lines of these fields (absent or null fields are left out; an "
    "object with none of them ranks as empty text)"
)


def _exactly_one(*fields: str) -> dict:
    """Exactly one of `fields` (none of them null)."""
    return {"oneOf": [{"required": [name]} for name in fields]}


def _strict_with(*constraints: dict) -> ConfigDict:
    """Strict config whose JSON schema also carries `constraints` (all of them)."""
    extra = constraints[0] if len(constraints) == 1 else {"allOf": list(constraints)}
    return ConfigDict(extra="forbid", json_schema_extra=extra)


def _check_text_list(value: Any, field: str) -> Any:
    """Reject empty lists and empty strings with a message naming `field`."""
    items = [value] if isinstance(value, str) else value
    if isinstance(items, list):
        if not items:
            raise ValueError(f"{field} must not be an empty list")
        for index, item in enumerate(items):
            if isinstance(item, str) and item == "":
                raise ValueError(f"{field}[{index}] is an empty string" if not isinstance(value, str) else f"{field} is an empty string")
            if isinstance(item, list) and not item:
                raise ValueError(f"{field}[{index}] is an empty list of token ids")
    return value


class OpenAIEmbeddingRequest(Strict):
    """`POST /v1/embeddings` and `/embeddings` (OpenAI), plus `instruction` (a query instruction
    for instruction-tuned models such as Qwen3-Embedding), `input_type` and `modality: "image"`.

    The JSON schema says what the view and the models refuse besides the types: an instruction
    with `input_type: "document"` for texts; with `modality: "image"`, token ids, an instruction
    or an input type."""

    model_config = _strict_with(
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
                            "input": _TEXTS,  # token ids take no prompt: the instruction is not used
                        },
                    },
                },
                {
                    "title": "images",
                    NEEDS_IMAGE_MODEL: True,
                    "required": ["modality"],
                    "properties": {
                        "modality": {"const": "image"},
                        "input": _TEXTS,
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

    @field_validator("input", mode="before")
    @classmethod
    def _input(cls, value: Any) -> Any:
        if not isinstance(value, (str, list)):
            raise ValueError(f"input must be {INPUT_SHAPES}")
        return _check_text_list(value, "input")


def _any_case(schema: dict) -> None:
    """`truncation_direction` in any case ("Left", as TEI spells it): the validator lower-cases."""
    words = schema.pop("enum")
    schema["pattern"] = "^(" + "|".join("".join(f"[{c.upper()}{c}]" for c in word) for word in words) + ")$"


#: TEI's `truncation_direction`: "left" or "right" in any case ("Left", as TEI spells it).
Direction = Annotated[
    Literal["left", "right"],
    BeforeValidator(lambda value: value.lower() if isinstance(value, str) else value),
    Field(json_schema_extra=_any_case),
]


class TEIInputs(Strict):
    """What TEI's text routes share: `inputs` (a string or a list of strings), `model` (not in
    TEI, which serves one model: a served name, the default text model when absent) and
    `prompt_name` (one of the model's prompts)."""

    inputs: TextInput
    model: Optional[StrictStr] = None
    prompt_name: Optional[StrictStr] = None

    @field_validator("inputs", mode="before")
    @classmethod
    def _inputs(cls, value: Any) -> Any:
        return _check_text_list(value, "inputs")


class TEITruncatedInputs(TEIInputs):
    """TEI's text routes that run the model: `inputs` longer than the model's maximum are cut
    (`truncate`, on `truncation_direction`'s side) or refused."""

    truncate: Annotated[StrictBool, Field(description=TRUNCATE)] = True
    truncation_direction: Direction = "right"


class TEIEmbedRequest(TEITruncatedInputs):
    """`POST /embed` with `inputs` (Hugging Face TEI)."""

    normalize: StrictBool = True
    dimensions: Optional[PositiveInt] = None


class ImageEmbedRequest(Strict):
    """`POST /embed` with `images` (as the SigLIP service): data URIs, base64, URLs or allowed
    local paths."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={NEEDS_IMAGE_MODEL: True})

    images: Annotated[NonEmptyList, Field(description=IMAGES)]
    model: Optional[StrictStr] = None
    normalize: StrictBool = True


class EmbedTextRequest(Strict):
    """`POST /embed_text` (as the SigLIP service): `texts` or `text`."""

    model_config = _strict_with(_exactly_one("texts", "text"))

    # Not Optional: omitted is fine, null is not (the schema says so too).
    texts: NonEmptyList = None  # type: ignore[assignment]
    text: NonEmptyStr = None  # type: ignore[assignment]
    model: Optional[StrictStr] = None
    normalize: StrictBool = True

    @field_validator("texts", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        return value if value is None else _check_text_list(value, "texts")

    @field_validator("text", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return value if value is None else _check_text_list(value, "text")

    def items(self) -> list[str]:
        if (self.texts is None) == (self.text is None):
            raise InvalidInput('send exactly one of "texts" (a list of strings) or "text" (a string)', param="texts")
        return self.texts if self.texts is not None else [self.text]


class _OllamaRequest(Strict):
    """Fields every Ollama embedding route takes. `keep_alive` and `options` are accepted and have
    no effect: models stay loaded for the life of the worker."""

    model: Optional[StrictStr] = None
    keep_alive: Optional[Union[StrictStr, JsonInt, StrictFloat]] = None
    options: Optional[dict[str, Any]] = None


class OllamaShowRequest(Strict):
    """`POST /api/show` (Ollama): `model`, or `name` as older clients send it (not both); none
    names the default text model. `verbose` is accepted and changes nothing."""

    model_config = _strict_with({"not": {"required": ["model", "name"], "properties": {
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

    @field_validator("input", mode="before")
    @classmethod
    def _input(cls, value: Any) -> Any:
        return _check_text_list(value, "input")


class OllamaEmbeddingsRequest(_OllamaRequest):
    """`POST /api/embeddings` (Ollama's legacy route)."""

    prompt: NonEmptyStr

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt(cls, value: Any) -> Any:
        return _check_text_list(value, "prompt")


DocumentInput = Union[NonEmptyStr, dict[str, Any]]
#: Documents as ranking reads them: a string, `{"text": str}` or `{"image": str}` (other keys
#: ride along and come back with `return_documents`)...
_TEXT_DOCUMENT = {"type": "object", "required": ["text"], "properties": {"text": _NON_EMPTY}}
IMAGE_DOCUMENT = {
    "type": "object", "required": ["image"], "properties": {"image": {"type": "string"}}, "not": {"required": ["text"]}
}
_IMAGE_DOCUMENT = {NEEDS_IMAGE_MODEL: True, **IMAGE_DOCUMENT}
#: ... or, with `rank_fields`, a string or any object (read through the named fields).
_DOCUMENT_SHAPES = {
    "anyOf": [
        {
            "title": "documents as given",
            "properties": {
                "rank_fields": {"anyOf": [{"type": "null"}, {"type": "array", "maxItems": 0}]},
                "documents": {"items": {"anyOf": [_NON_EMPTY, _TEXT_DOCUMENT, _IMAGE_DOCUMENT]}},
            },
        },
        {
            "title": "strings, with rank_fields",
            "required": ["rank_fields"],
            "properties": {
                "rank_fields": {"type": "array", "minItems": 1},
                "documents": {"items": {"anyOf": [_NON_EMPTY, {"type": "object"}]}},
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


class RerankRequest(Strict):
    """`POST /rerank`, `/v1/rerank`, `/v2/rerank` (Cohere; `texts` accepted in place of
    `documents`; TEI's `return_text`, `truncate` and `truncation_direction`). `priority` is
    accepted and has no effect. On `/rerank`, `texts` with one of TEI's own fields
    (`truncation_direction`, `raw_scores`, `return_text`) is TEI's request (see :meth:`tei_shaped`)."""

    model_config = _strict_with(_exactly_one("documents", "texts"), _ONE_SWITCH, _DOCUMENT_SHAPES)

    query: QueryText
    documents: Annotated[list[DocumentInput], Field(min_length=1)] = None  # type: ignore[assignment]
    texts: NonEmptyList = None  # type: ignore[assignment]
    top_n: Optional[PositiveInt] = None
    return_documents: Optional[StrictBool] = None
    return_text: Optional[StrictBool] = None
    instruction: Optional[StrictStr] = None
    model: Optional[StrictStr] = None
    raw_scores: StrictBool = False
    truncate: Annotated[StrictBool, Field(description=TRUNCATE)] = True
    truncation_direction: Annotated[Direction, Field(description=DIRECTION)] = "right"
    max_chunks_per_doc: Optional[PositiveInt] = None
    max_tokens_per_doc: Optional[PositiveInt] = None
    rank_fields: Annotated[Optional[list[StrictStr]], Field(description=RANK_FIELDS)] = None
    priority: Optional[JsonInt] = None

    @field_validator("top_n", "max_chunks_per_doc", "max_tokens_per_doc", mode="before")
    @classmethod
    def _positive(cls, value: Any, info) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise ValueError(f"{info.field_name} must be at least 1; got {value}")
        return value

    @field_validator("documents", "texts", mode="before")
    @classmethod
    def _documents(cls, value: Any, info) -> Any:
        return value if value is None else _check_text_list(value, info.field_name)

    def tei_shaped(self) -> bool:
        """TEI's rerank request: `texts` (not `documents`) with one of the fields only TEI has."""
        return self.texts is not None and bool({"truncation_direction", "raw_scores", "return_text"} & self.model_fields_set)

    def items(self) -> tuple[list, str]:
        """The documents and the field they came in (`documents` or `texts`)."""
        if (self.documents is None) == (self.texts is None):
            raise InvalidInput('send exactly one of "documents" or "texts"', param="documents")
        docs, field = (self.documents, "documents") if self.documents is not None else (self.texts, "texts")
        if not docs:
            raise InvalidInput(f"{field} must not be an empty list", param=field)
        return docs, field


def parse(schema: Type[T], data: Any) -> T:
    """Validate `data` against `schema`; raises InvalidInput (400) naming the first bad field."""
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object", param=None)
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(*_describe(exc)) from None


def _describe(exc: ValidationError) -> tuple[str, Optional[str]]:
    errors = exc.errors(include_url=False)
    # Prefer our own messages (value errors) over the union members' generic type errors.
    err = next((e for e in errors if e["type"] == "value_error"), errors[0])
    loc = [str(part) for part in err["loc"] if not _is_union_tag(part)]
    param = loc[0] if loc else None
    where = loc[0] + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc[1:]) if loc else "body"
    if err["type"] == "extra_forbidden":
        return f"unknown field {where!r}", param
    if err["type"] == "missing":
        return f"missing required field {where!r}", param
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "value_error":
        return message, param
    if param in ("input",) and err["type"] != "literal_error":
        return f"input must be {INPUT_SHAPES}", param
    return f"{where}: {message}", param


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "bool", "float", "function-after"})
