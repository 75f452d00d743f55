"""Request schemas (pydantic v2), one per route family; views call :func:`parse`.

Unknown fields are rejected (400 naming the field) so a client never believes an option took
effect when it did not. Limits that depend on configuration (`MAX_CLIENT_BATCH_SIZE`, model
dimensions) are checked in `embedding_service.service`, not here.
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

from .errors import BadRequest

T = TypeVar("T", bound=BaseModel)

def _integral(value: Any) -> Any:
    """JSON Schema counts 173.0 as an integer; so do we (never booleans or strings)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The constraints below show in /openapi.json; the before-validators reject the same inputs first,
# with messages that name the field and the index.
JsonInt = Annotated[StrictInt, BeforeValidator(_integral)]
NonEmptyStr = Annotated[StrictStr, Field(min_length=1)]
NonEmptyList = Annotated[list[NonEmptyStr], Field(min_length=1)]
TokenIds = Annotated[list[Annotated[JsonInt, Field(ge=0)]], Field(min_length=1)]
TextInput = Union[NonEmptyStr, NonEmptyList]
TokenInput = Union[TokenIds, Annotated[list[TokenIds], Field(min_length=1)]]
PositiveInt = Annotated[JsonInt, Field(ge=1)]
INPUT_SHAPES = "a string, a list of strings, a list of token ids or a list of lists of token ids"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


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
    for instruction-tuned models such as Qwen3-Embedding), `input_type` and `modality: "image"`."""

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


class TEIEmbedRequest(Strict):
    """`POST /embed` with `inputs` (Hugging Face TEI)."""

    inputs: TextInput
    model: Optional[StrictStr] = None
    normalize: StrictBool = True
    truncate: StrictBool = True
    truncation_direction: Literal["left", "right"] = "right"
    prompt_name: Optional[StrictStr] = None
    dimensions: Optional[PositiveInt] = None

    @field_validator("truncation_direction", mode="before")
    @classmethod
    def _direction(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value  # TEI spells it "Left"/"Right"

    @field_validator("inputs", mode="before")
    @classmethod
    def _inputs(cls, value: Any) -> Any:
        return _check_text_list(value, "inputs")


class ImageEmbedRequest(Strict):
    """`POST /embed` with `images` (as the SigLIP service): data URIs, base64, URLs or allowed
    local paths."""

    images: NonEmptyList
    model: Optional[StrictStr] = None
    normalize: StrictBool = True


def _exactly_one(*fields: str) -> ConfigDict:
    """Strict config whose JSON schema says: exactly one of `fields` (none of them null)."""
    return ConfigDict(
        extra="forbid", json_schema_extra={"oneOf": [{"required": [name]} for name in fields]}
    )


class EmbedTextRequest(Strict):
    """`POST /embed_text` (as the SigLIP service): `texts` or `text`."""

    model_config = _exactly_one("texts", "text")

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
            raise BadRequest('send exactly one of "texts" (a list of strings) or "text" (a string)', param="texts")
        return self.texts if self.texts is not None else [self.text]


class _OllamaRequest(Strict):
    """Fields every Ollama embedding route takes. `keep_alive` and `options` are accepted and have
    no effect: models stay loaded for the life of the worker."""

    model: Optional[StrictStr] = None
    keep_alive: Optional[Union[StrictStr, JsonInt, StrictFloat]] = None
    options: Optional[dict[str, Any]] = None


class OllamaEmbedRequest(_OllamaRequest):
    """`POST /api/embed` (Ollama)."""

    input: TextInput
    truncate: StrictBool = True
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


class RerankRequest(Strict):
    """`POST /rerank`, `/v1/rerank`, `/v2/rerank` (Cohere; `texts` accepted in place of
    `documents`; TEI's `return_text` and `truncate`). `priority` is accepted and has no effect."""

    model_config = _exactly_one("documents", "texts")

    query: Annotated[StrictStr, Field(pattern=r"\S")]
    documents: Annotated[list[DocumentInput], Field(min_length=1)] = None  # type: ignore[assignment]
    texts: NonEmptyList = None  # type: ignore[assignment]
    top_n: Optional[PositiveInt] = None
    return_documents: Optional[StrictBool] = None
    return_text: Optional[StrictBool] = None
    instruction: Optional[StrictStr] = None
    model: Optional[StrictStr] = None
    raw_scores: StrictBool = False
    truncate: StrictBool = True
    max_chunks_per_doc: Optional[PositiveInt] = None
    max_tokens_per_doc: Optional[PositiveInt] = None
    rank_fields: Optional[list[StrictStr]] = None
    priority: Optional[JsonInt] = None

    @field_validator("query", mode="before")
    @classmethod
    def _query(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError("query is an empty string")
        return value

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

    def items(self) -> tuple[list, str]:
        """The documents and the field they came in (`documents` or `texts`)."""
        if (self.documents is None) == (self.texts is None):
            raise BadRequest('send exactly one of "documents" or "texts"', param="documents")
        docs, field = (self.documents, "documents") if self.documents is not None else (self.texts, "texts")
        if not docs:
            raise BadRequest(f"{field} must not be an empty list", param=field)
        return docs, field


def parse(schema: Type[T], data: Any) -> T:
    """Validate `data` against `schema`; raises BadRequest (400) naming the first bad field."""
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object", param=None)
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(*_describe(exc)) from None


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
