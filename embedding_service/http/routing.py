"""Routes that declare their own OpenAPI operation and error style where they are defined.

A blueprint module builds an :class:`ApiBlueprint` with its defaults (OpenAPI tag, error style)
and declares each route once, with what `/openapi.json` says about it::

    bp = ApiBlueprint("ollama", __name__, tag="Ollama", error_style=ErrorStyle.FLAT)

    @bp.operation("POST", "/api/embed", summary="Ollama embed", request=OllamaEmbedRequest,
                  response=OllamaEmbedResponse, errors=EMBED_ERRORS)
    def embed(): ...

:meth:`ApiBlueprint.operation` registers the view exactly like `Blueprint.route` and sets
`view.operation` to an :class:`Operation`. Nothing else lists the routes:
`openapi.build_spec` walks the app's URL map and documents every rule whose view carries an
operation, and `errors.error_response` renders a failure in the body shape of the matched view's
`operation.error_style`. A route registered with plain `bp.get`/`bp.post` is served but left out
of the description (the Swagger UI asset route is the one such route).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Literal, Mapping, Optional, Union

from flask import Blueprint
from pydantic import BaseModel

from .budgets import NO_ITEMS, Budget
from .errors import ErrorStyle

#: Statuses an embedding route can answer besides 200 (500, and 405 on routes taking a body, are
#: always documented; 401 and 429 when API keys or rate limits are on).
EMBED_ERRORS = (400, 404, 413, 415, 422, 500, 503)
#: The same for routes that accept images: 403 for a URL or local path that is not allowed.
IMAGE_ERRORS = (400, 403, 404, 413, 415, 422, 500, 503)

#: The request limits (settings, each answered with 413 beyond it; see openapi.LIMIT_TEXT) of a
#: route embedding texts, one that may also take images, and the rerank routes.
TEXT_LIMITS = ("MAX_CONTENT_LENGTH", "MAX_CLIENT_BATCH_SIZE", "MAX_INPUT_CHARS", "MAX_REQUEST_CHARS", "MAX_QUEUE_SIZE")
IMAGE_LIMITS = TEXT_LIMITS + ("IMAGE_MAX_BYTES", "IMAGE_MAX_PIXELS", "IMAGE_MAX_REQUEST_PIXELS", "IMAGE_MAX_URLS")
RERANK_LIMITS = IMAGE_LIMITS + ("MAX_RERANK_CHUNKS",)

#: A 200 body: a pydantic model, a JSON Schema (dict), or None for a non-JSON `media_type`.
ResponseBody = Union[type[BaseModel], dict, None]


@dataclass(frozen=True)
class Operation:
    """What /openapi.json says about one route, and the error body shape it answers with.

    - `summary`, `tag`: the operation's one-line summary and its group (an API dialect such as
      "OpenAI", "TEI", "Ollama", "Cohere", "SigLIP service", or "operations").
    - `requests`: the JSON request body models; several are offered as `oneOf`; none means the
      route takes no body.
    - `response`: the 200 body (see :data:`ResponseBody`), served as `media_type`.
    - `errors`: the error statuses the route answers with (500 is always added; 405 too when the
      route takes a body; 401 and 429 when the deployment has API keys or a rate limit and the
      route is not `public`).
    - `error_style`: the error body shape (errors.ErrorStyle: the nested body, vLLM's, TEI's,
      Cohere's or Ollama's).
    - `error_styles`: the other styles a request's shape may pick on a path several dialects
      share, picked by the request's shape; `error_style` is the one
      used unless `pick_error_style(request, body)` returns another: it is asked with `body`
      None before the body is read, and again with the parsed JSON body (json_io.json_body),
      whose answer then holds for the rest of the request.
    - `error_bodies`: statuses whose body is this model instead of an error (`/ready`'s 503).
    - `public`: served without an API key under the default AUTH_PUBLIC_PATHS (documented with
      `security: []` and without 401/429).
    - `multipart`: also accepts `multipart/form-data` image uploads (`file` parts, `model`,
      `normalize`).
    - `models`: which served names the request's `model` may take in the description: "text"
      (models that embed text), "all" (rerankers and image models too), "tokens" (models that
      give token embeddings), "sparse" (models that give lexical weights), "pooling" (text,
      multi-vector, token-embedding and classifier models), "classifier" or "token-classifier"; a
      request model may say otherwise (`schemas.MODEL_KIND`).
    - `default_model`: which model a request without `model` gets, for the description: "default"
      (the default model for what the route does) or "first" (the first configured model when it
      embeds text, as `/embed_text` picks).
    - `limits`: the request limits the route applies (setting names, e.g. :data:`TEXT_LIMITS`),
      documented with their values as `x-limits` and in the description.
    - `budget`: what one request may cost (:class:`budgets.Budget`), enforced at the HTTP edge
      before any work; required of a route that takes a body (POST), :data:`budgets.NO_ITEMS`
      for one that takes none.
    """

    summary: str
    tag: str
    requests: tuple[type[BaseModel], ...] = ()
    response: ResponseBody = None
    media_type: str = "application/json"
    errors: tuple[int, ...] = ()
    error_style: ErrorStyle = ErrorStyle.NESTED
    error_styles: tuple[ErrorStyle, ...] = ()
    pick_error_style: Optional[Callable[[Any, Any], Optional[ErrorStyle]]] = None
    error_bodies: Mapping[int, type[BaseModel]] = field(default_factory=dict)
    public: bool = False
    multipart: bool = False
    models: Literal["text", "all", "tokens", "sparse", "pooling", "classifier", "token-classifier"] = "text"
    default_model: Literal["default", "first"] = "default"
    limits: tuple[str, ...] = ()
    budget: Optional[Budget] = None


class ApiBlueprint(Blueprint):
    """A Flask blueprint whose routes carry an :class:`Operation` (see the module docstring).

    `tag` and `error_style` are the defaults of every operation declared on it; one operation may
    override either.
    """

    def __init__(self, name: str, import_name: str, *, tag: str, error_style: ErrorStyle = ErrorStyle.NESTED, **kwargs: Any):
        super().__init__(name, import_name, **kwargs)
        self.tag = tag
        self.error_style = error_style

    def operation(self, method: str, *paths: str, endpoint: Optional[str] = None, **doc: Any) -> Callable:
        """Decorator: serve the view at each of `paths` for `method` ("GET", "POST", ...) and
        attach the :class:`Operation` built from `doc` (its fields; `request` may be given as one
        model or a tuple of models). Every path shares the one operation."""

        def register(view: Callable) -> Callable:
            for path in paths:
                self.add_operation(path, endpoint, view, method, **doc)
            return view

        return register

    def add_operation(self, path: str, endpoint: Optional[str], view: Callable, method: str, **doc: Any) -> None:
        """`Blueprint.add_url_rule` for one method, attaching the operation (see :meth:`operation`).

        raises ValueError when `view` already carries a different operation (a view has one)."""
        operation = self._build(doc)
        if operation.budget is None:
            if method.upper() != "GET":
                raise ValueError(f"{method.upper()} {path} declares no budget: give its operation a budgets.Budget")
            operation = replace(operation, budget=NO_ITEMS)
        existing = getattr(view, "operation", None)
        if existing is not None and existing != operation:
            raise ValueError(f"{view.__name__} already declares an operation; give each operation its own view")
        view.operation = operation  # type: ignore[attr-defined]
        self.add_url_rule(path, endpoint, view, methods=[method.upper()])

    def _build(self, doc: dict) -> Operation:
        doc = dict(doc)
        requests = doc.pop("request", ())
        doc["requests"] = tuple(requests) if isinstance(requests, (tuple, list)) else (requests,)
        doc.setdefault("tag", self.tag)
        doc.setdefault("error_style", self.error_style)
        return Operation(**doc)
