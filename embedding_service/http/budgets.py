"""What one request may cost: every route's budgets, declared where the route is defined and
enforced here, at the HTTP edge, before any tokenising or forward pass.

A route declares a :class:`Budget` with its operation (`ApiBlueprint.operation(..., budget=...)`);
a route that takes a body and declares none is refused when the blueprint is built, and
`tests/service/test_route_budgets.py` walks the app's URL map with the largest request each
declaration admits and one just over each budget. The edge applies a budget cheap before expensive:

1. **Body bytes** (:func:`body_limit`): a `Content-Length` over the route's byte budget is refused
   before a byte is read; a streamed body is read up to it and no further.
2. **Shape** (`json_io.check_shape`), on orjson's result before any schema builds objects from it:
   items per list (MAX_CLIENT_BATCH_SIZE), token ids per list (MAX_INPUT_CHARS), values in the body
   (MAX_REQUEST_CHARS).
3. **Output** (:class:`TokensOut`), an upper bound of the per-token data the answer would carry,
   computed from the parsed body, against its setting.

Characters per input and per request (MAX_INPUT_CHARS, MAX_REQUEST_CHARS) are counted by the
operations on each text as the model sees it (prompt included), still before tokenising. Every
refusal is a 413 naming the budget and its setting, in the route's error shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, Mapping, Optional

from ..config.settings import Settings
from ..domain.errors import LimitExceeded, ServiceError
from ..inference.engine import Capability
from ..inference.registry import Registry
from ..operations.model_names import resolve
from ..operations.tokens import token_engine

#: The byte budget of a route that takes no body, or only a few small fields (a model name).
SMALL_BODY_BYTES = 64 * 1024
#: Bytes a text route's body may spend per character or value of MAX_REQUEST_CHARS: a character
#: written as a JSON escape of a surrogate pair (`\\ud83d\\ude00`) takes 12.
BYTES_PER_VALUE = 12
#: Tokens one input may add beyond one per UTF-8 byte: special tokens ([CLS], [SEP], BOS/EOS)
#: and a SentencePiece word-start piece.
SPECIAL_TOKENS = 4


class BodyLimit(Enum):
    """A route's body byte budget (see :func:`body_limit`)."""

    #: no body (GET routes), or a few small fields: 64 KiB
    SMALL = "small"
    #: texts or token ids: 12 bytes per MAX_REQUEST_CHARS value plus 64 KiB, within MAX_CONTENT_LENGTH
    TEXT = "text"
    #: images as base64 or data URLs, or multipart uploads: MAX_CONTENT_LENGTH
    IMAGES = "images"


def body_limit(kind: BodyLimit, max_content_length: int, max_request_chars: int) -> tuple[int, str]:
    """`(bytes, the budget named)`: the body byte budget of a route of `kind` under the app's
    MAX_CONTENT_LENGTH and MAX_REQUEST_CHARS, and how it is derived, with the number (quoted in
    the 413)."""
    if kind is BodyLimit.SMALL and SMALL_BODY_BYTES < max_content_length:
        return SMALL_BODY_BYTES, f"{SMALL_BODY_BYTES} bytes (64 KiB: the route takes no texts or images)"
    if kind is BodyLimit.TEXT:
        derived = BYTES_PER_VALUE * max_request_chars + SMALL_BODY_BYTES
        if derived < max_content_length:
            return derived, f"{derived} bytes ({BYTES_PER_VALUE} bytes per value of MAX_REQUEST_CHARS, plus 64 KiB)"
    return max_content_length, f"MAX_CONTENT_LENGTH ({max_content_length} bytes)"


#: Where a request's items go in :attr:`Budget.example`: a list of them, or one item.
ITEMS = "<items>"
ONE_ITEM = "<one item>"


def input_tokens(value: Any, window: float = float("inf")) -> list[int]:
    """The most tokens each input of a body field can make: a text its UTF-8 bytes plus
    SPECIAL_TOKENS, a list of token ids its length (TEI's token-id inputs; a flat id list is one
    input), each at most `window`; values of other types make none (the schema refuses them)."""
    if isinstance(value, str) or (isinstance(value, list) and value and all(isinstance(v, int) for v in value)):
        value = [value]
    if not isinstance(value, list):
        return []
    bounds = []
    for item in value:
        if isinstance(item, str):
            bounds.append(int(min(len(item.encode("utf-8", "surrogatepass")) + SPECIAL_TOKENS, window)))
        elif isinstance(item, list):
            bounds.append(int(min(len(item), window)))
    return bounds


@dataclass(frozen=True)
class TokensOut:
    """An output budget for per-token data: tokens returned (`/tokenize`), ids decoded
    (`/decode`), token vectors (`/embed_all`), counted from the parsed body before tokenising.

    - `field`: the body field holding the texts (a string or a list of them) or, with `ids`, the
      token ids (a list, or a list of lists).
    - `setting`: the budget (a Settings field, upper-case in messages).
    - `ids`: count the ids sent (one token each) instead of bounding the tokens of texts.
    - `window`: with `truncate` not false, an input gives at most the window of the model the
      request gets (`operations.tokens.token_engine`).

    A text's tokens are bounded by its UTF-8 bytes plus :data:`SPECIAL_TOKENS`: byte-level BPE
    gives at most one token per byte, WordPiece and SentencePiece (with byte fallback) no more.
    """

    field: str
    setting: str
    ids: bool = False
    window: bool = False

    def bound(self, body: Any, engines: Optional[Registry]) -> int:
        """The most tokens `body` can make (0 for a body of the wrong shape: its schema refuses it)."""
        if not isinstance(body, dict):
            return 0
        value = body.get(self.field)
        if self.ids:
            if not isinstance(value, list):
                return 0
            return sum(len(row) if isinstance(row, list) else 1 for row in value)
        return sum(input_tokens(value, self._window(body, engines)))

    def _window(self, body: dict, engines: Optional[Registry]) -> float:
        """The window of the model the request names (or would get), else the longest served."""
        if not self.window or body.get("truncate") is False or engines is None:
            return float("inf")
        name = body.get("model")
        try:
            windows = [token_engine(engines, name if isinstance(name, str) else None).model.max_length]
        except ServiceError:  # the route answers this request with its own error
            windows = [e.model.max_length for e in engines.engines if e.can(Capability.TOKEN_STATES)]
        return max(windows) if windows and all(windows) else float("inf")

    def check(self, body: Any, engines: Optional[Registry], settings: Settings) -> None:
        """raises LimitExceeded (413) when the bound passes the setting."""
        limit = getattr(settings, self.setting)
        bound = self.bound(body, engines)
        if bound > limit:
            how = "one per id sent" if self.ids else (
                f"one per UTF-8 byte plus {SPECIAL_TOKENS} per input"
                + (", at most the model's window each while truncate is on" if self.window else "")
            )
            raise LimitExceeded(
                f"{self.field} may make up to {bound} tokens ({how}); at most {limit} per request "
                f"({self.setting.upper()})", param=self.field,
            )


@dataclass(frozen=True)
class RetrievalOut(TokensOut):
    """An output budget for sparse or multi-vector answers, bounded from the parsed body before
    tokenising, on the model the request gets (the one named, else the first with that output):

    - `output` "sparse": entries, at most one per token for BGE-M3's lexical weights and at most the
      vocabulary (or `max_active_dims`) for SPLADE, whatever the text (`sparse_bound`);
    - `output` "multi-vector": values, each token vector's dimension per vector, a PyLate query
      making its full `query_length` (`vectors_bound`).

    A text's tokens are bounded as :class:`TokensOut` bounds them (UTF-8 bytes plus
    :data:`SPECIAL_TOKENS`, at most the model's window while `truncate` is on); `when`: `(field,
    values, otherwise)`, the rule applies when the body's `field` is one of `values` (vLLM's
    `task`); an absent field counts as `otherwise` for a model that embeds text, as the first of
    `values` for one that does not; None for always. A token classifier's output counts its labels
    per token."""

    output: str = "sparse"
    when: Optional[tuple[str, tuple[str, ...], str]] = None

    def bound(self, body: Any, engines: Optional[Registry]) -> int:
        if not isinstance(body, dict) or engines is None:
            return 0
        engine = self._engine(body, engines)
        if engine is None:
            return 0  # the route answers with its own error (unknown model, no such output)
        if self.when is not None:
            field, values, otherwise = self.when
            # absent: `otherwise` for a model that embeds text, the first value for one that does not
            chosen = body.get(field, otherwise if engine.can(Capability.EMBED_TEXT) else values[0])
            if chosen not in values:
                return 0
        model: Any = engine.model
        window = model.max_length if body.get("truncate") is not False and model.max_length else float("inf")
        query = body.get("input_type") == "query"
        total = 0
        for tokens in input_tokens(body.get(self.field), window):
            if self.output == "sparse":
                total += model.sparse_bound(tokens)
            elif engine.can(Capability.MULTI_VECTOR):
                total += model.vectors_bound(tokens, query)
            elif engine.can(Capability.TOKEN_CLASSIFY):
                total += tokens * len(model.labels)
            else:  # a text model's last hidden states, one per token
                total += tokens * model.dimension
        return total

    def _engine(self, body: dict, engines: Registry) -> Optional[Any]:
        """The engine the request gets: for "sparse" one with sparse output; for "multi-vector" the
        one named (token vectors, or a text model's hidden states), else the first multi-vector
        model, else the first with token embeddings. None when the route refuses the request."""
        name = body.get("model")
        name = name if isinstance(name, str) and name else None
        try:
            if self.output == "sparse":
                return engines.get(resolve(engines, name), Capability.SPARSE)
            if name is not None:
                return engines.find(resolve(engines, name))
            if body.get("task") == "token_classify":
                return engines.default(Capability.TOKEN_CLASSIFY) if engines.has(Capability.TOKEN_CLASSIFY) else None
            for capability in (Capability.MULTI_VECTOR, Capability.TOKEN_STATES):
                if engines.has(capability):
                    return engines.default(capability)
        except ServiceError:
            return None
        return None

    def check(self, body: Any, engines: Optional[Registry], settings: Settings) -> None:
        limit = getattr(settings, self.setting)
        bound = self.bound(body, engines)
        if bound > limit:
            what = "sparse entries (one per token, or the vocabulary, per input)" if self.output == "sparse" else \
                "token-vector values (vectors x dimension)"
            raise LimitExceeded(
                f"{self.field} may make up to {bound} {what}; at most {limit} per request ({self.setting.upper()})",
                param=self.field,
            )


@dataclass(frozen=True)
class Budget:
    """What one request to a route may cost (see the module docstring).

    - `body`: the body byte budget (:class:`BodyLimit`).
    - `item`: what the route's items are: "text", "ids" (token-id lists), or None (no items).
    - `example`: a small valid request body, with :data:`ITEMS` (or :data:`ONE_ITEM`) where the
      items go; the URL-map test fills it with the largest request the budgets admit.
    - `output`: the output budget for per-token data (:class:`TokensOut`), or None where the answer
      is bounded by the items (one vector, score or row per item).
    - `extra_items`: inputs the example holds besides its list that count against
      MAX_CLIENT_BATCH_SIZE (similarity's source sentence: 1).
    - `capability`: the output the route needs of its model ("sparse", "multi-vector"), None for
      the route's usual models (the URL-map test picks a model that has it).
    """

    body: BodyLimit
    item: Optional[Literal["text", "ids"]] = None
    example: Mapping[str, Any] = field(default_factory=dict)
    output: Optional[TokensOut] = None
    extra_items: int = 0
    capability: Optional[str] = None


#: GET routes and routes without items: a small body, nothing else to bound.
NO_ITEMS = Budget(BodyLimit.SMALL)


def check_body_size(
    budget: Budget, max_content_length: int, max_request_chars: int, content_length: Optional[int], route: str
) -> tuple[int, str]:
    """The route's byte budget and how it is derived (:func:`body_limit`); raises LimitExceeded
    (413) when `content_length` is over it, before any of the body is read."""
    limit, how = body_limit(budget.body, max_content_length, max_request_chars)
    if content_length is not None and content_length > limit:
        raise LimitExceeded(body_too_large(limit, how, max_content_length, route), param=None)
    return limit, how


def body_too_large(limit: int, how: str, max_content_length: int, route: str) -> str:
    """The 413 message for a body over the route's byte budget: as nginx in front says it when
    the budget is MAX_CONTENT_LENGTH (its `client_max_body_size`), else naming the route."""
    if limit == max_content_length:
        return f"request body is larger than {how}"
    return f"request body is larger than {how}, the most {route} takes"


#: The request limits of every sparse route.
SPARSE_LIMITS = ("MAX_CONTENT_LENGTH", "MAX_CLIENT_BATCH_SIZE", "MAX_INPUT_CHARS", "MAX_REQUEST_CHARS", "MAX_SPARSE_ENTRIES")


def sparse_budget(field: str) -> Budget:
    """The budget of every sparse route: texts in `field`, and the entries they may make (MAX_SPARSE_ENTRIES)."""
    return Budget(BodyLimit.TEXT, "text", {field: ITEMS}, output=RetrievalOut(field, "max_sparse_entries", output="sparse"),
                  capability="sparse")
