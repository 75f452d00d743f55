"""What every dialect's request schemas are built from (pydantic v2), and :func:`parse`, which
the views call. Each dialect's own request models are in its folder (`dialects/<name>/schemas.py`).

Unknown fields are rejected (400 naming the field) so a client never believes an option took
effect when it did not. Limits that depend on configuration (`MAX_CLIENT_BATCH_SIZE`, model
dimensions) are checked by the operations (`embedding_service.operations`), not here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Type, TypeVar, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from ..domain.errors import InvalidInput
from ..observability import tracing

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
TokenIds = Annotated[list[Annotated[StrictInt, Field(ge=0)]], Field(min_length=1)]  # 1.0 refused: check_text_list
TextInput = Union[NonEmptyStr, NonEmptyList]
TokenInput = Union[TokenIds, Annotated[list[TokenIds], Field(min_length=1)]]
PositiveInt = Annotated[StrictInt, Field(ge=1), BeforeValidator(_integral)]
#: TEI's `Input`: a text, one input's token ids, or a list of texts and token-id lists (mixed).
TEIInput = Union[NonEmptyStr, TokenIds, Annotated[list[Union[NonEmptyStr, TokenIds]], Field(min_length=1)]]
INPUT_SHAPES = "a string, a list of strings, a list of token ids or a list of lists of token ids"


def texts_or_ids(value: Any) -> tuple[Optional[list], Optional[list]]:
    """(texts, token ids), one of them None: OpenAI's `input` read as a text, texts, one input's
    token ids, or a list of them (a parsed TextInput or TokenInput)."""
    if isinstance(value, str):
        return [value], None
    if value and isinstance(value[0], int):
        return None, [value]
    if value and isinstance(value[0], list):
        return None, list(value)
    return list(value), None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


# ------------------------------------------------------------- what the JSON schema says besides
# Constraints between fields that pydantic's types cannot spell, added to a model's JSON schema so
# that /openapi.json describes exactly the requests `parse` and the service accept (the views and
# the service enforce them; see each model). Configuration-dependent limits are filled in per
# deployment by `openapi.tighten`.

#: Marks a request model, or a branch of a schema, that only a deployment serving an image model
#: accepts: `openapi.tighten` drops it from deployments without one.
NEEDS_IMAGE_MODEL = "x-requires-image-model"
#: Marks a property, besides `model`, that names a served model: `openapi.tighten` lists the names.
SERVED_MODEL_NAME = "x-served-model-name"
#: Set on a request model whose `model` may name other models than its route's (`Operation.models`).
MODEL_KIND = "x-model-kind"
NON_EMPTY = {"type": "string", "minLength": 1}
TEXTS = {"anyOf": [NON_EMPTY, {"type": "array", "items": NON_EMPTY, "minItems": 1}]}
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


def exactly_one(*fields: str) -> dict:
    """Exactly one of `fields` (none of them null)."""
    return {"oneOf": [{"required": [name]} for name in fields]}


def strict_with(*constraints: dict) -> ConfigDict:
    """Strict config whose JSON schema also carries `constraints` (all of them)."""
    extra = constraints[0] if len(constraints) == 1 else {"allOf": list(constraints)}
    return ConfigDict(extra="forbid", json_schema_extra=extra)


def check_text_list(value: Any, field: str) -> Any:
    """Reject empty lists, empty strings and token ids written as numbers with a fraction or an
    exponent (`1.0`, `1e3`: TEI's and OpenAI's token ids are integers), with a message naming
    `field` and the index."""
    items = [value] if isinstance(value, str) else value
    if isinstance(items, list):
        if not items:
            raise ValueError(f"{field} must not be an empty list")
        for index, item in enumerate(items):
            if isinstance(item, str) and item == "":
                raise ValueError(f"{field}[{index}] is an empty string" if not isinstance(value, str) else f"{field} is an empty string")
            if isinstance(item, float):
                raise ValueError(f"{field}[{index}] is {item!r}; token ids are integers (no fraction or exponent)")
            if isinstance(item, list):
                if not item:
                    raise ValueError(f"{field}[{index}] is an empty list of token ids")
                inner = next((i for i, token in enumerate(item) if isinstance(token, float)), None)
                if inner is not None:
                    raise ValueError(
                        f"{field}[{index}][{inner}] is {item[inner]!r}; token ids are integers (no fraction or exponent)"
                    )
    return value

def text_list_check(*fields: str, name: Optional[str] = None) -> Any:
    """A before-validator of `fields` for a request model's body: :func:`check_text_list`, naming
    the field (or `name`) in its messages; an omitted optional field (None) passes.
    Use: `_inputs = text_list_check("inputs")` in the class body."""

    def check(cls: Any, value: Any, info: Any) -> Any:
        return value if value is None else check_text_list(value, name or info.field_name)

    return field_validator(*fields, mode="before")(check)



def _null_is_true(value: Optional[bool]) -> bool:
    return True if value is None else value


#: `truncate`: a boolean, or null for the default (true), as TEI's schemas allow null.
TruncateFlag = Annotated[Optional[StrictBool], AfterValidator(_null_is_true), Field(description=TRUNCATE)]


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


#: An image document, `{"image": str}` (ranking's documents; only with an image model served).
IMAGE_DOCUMENT = {
    "type": "object", "required": ["image"], "properties": {"image": {"type": "string"}}, "not": {"required": ["text"]}
}


def parse(schema: Type[T], data: Any) -> T:
    """Validate `data` against `schema`; raises InvalidInput (400) naming the first bad field."""
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object", param=None)
    with tracing.span("validation", schema=schema.__name__):
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
    """pydantic's names for the branch of a union or a constrained type in an error's location
    (`list[str]`, `constrained-str`, `function-after`, ...): internal, never shown to a client."""
    return isinstance(part, str) and (
        "[" in part or part in {"str", "int", "bool", "float"} or part.startswith(("constrained-", "function-"))
    )
