"""What the running deployment allows, as the OpenAPI description needs it: the served models
(:class:`ServedModel`) and its request budgets (:class:`Deployment`, :data:`LIMIT_TEXT`)."""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel


#: The request limits a route may declare (`Operation.limits`), by setting name: each is answered
#: with 413 beyond it. They are not JSON Schema bounds (`maxLength`, `maxItems`): a request outside
#: a schema's bounds is one the service must refuse as malformed (400), and these are budgets on
#: well-formed requests, some of them sums over the request or counts of tokens and pixels no
#: schema can spell. They are stated as `x-limits` on the operation and in its description.
LIMIT_TEXT = {
    "MAX_CONTENT_LENGTH": "bytes of request body",
    "MAX_CLIENT_BATCH_SIZE": "inputs or documents per request",
    "MAX_INPUT_CHARS": "characters per input as the model sees it (prompt or instruction included)",
    "MAX_REQUEST_CHARS": "characters per request, summed over its inputs (prompts included; for reranking, "
    "the query once per document)",
    "MAX_QUEUE_SIZE": "items one request may queue on a model (0: no limit)",
    "MAX_RERANK_CHUNKS": "document chunks per rerank request with max_chunks_per_doc",
    "IMAGE_MAX_BYTES": "bytes per encoded image",
    "IMAGE_MAX_PIXELS": "pixels per image",
    "IMAGE_MAX_REQUEST_PIXELS": "pixels per request, summed over its images",
    "IMAGE_MAX_URLS": "image URLs per request",
    "MAX_EMBED_ALL_TOKENS": "token vectors per request",
    "MAX_RESPONSE_TOKENS": "tokens per request (a text's UTF-8 bytes plus 4, counted before tokenising; an id is one)",
}


class ServedModel(BaseModel):
    """One served model as the request schemas need it: its names, what it can do and its bounds."""

    labels: list[str]
    text: bool = True
    images: bool = False
    pairs: bool = False
    dimension: Optional[int] = None
    max_token_id: Optional[int] = None
    #: Its prompts (TEI's `prompt_name`).
    prompt_names: list[str] = []
    #: Whether reranking with it takes an `instruction` (cross-encoders refuse one).
    instruction: bool = True
    #: Whether it gives token embeddings (TEI's /embed_all).
    token_embeddings: bool = False
    #: Whether it gives lexical weights (sparse) and token vectors (multi-vector).
    sparse: bool = False
    multi_vector: bool = False
    #: Whether it classifies (TEI's /predict, /classify), or classifies tokens (/pooling token_classify).
    classifier: bool = False
    token_classifier: bool = False

    @property
    def image_documents(self) -> bool:
        """Whether reranking with it scores image documents (a multimodal model scoring by embeddings)."""
        return self.images and not self.pairs


class Deployment(BaseModel):
    """What the running service allows, filled into the schemas. Without `served` (the models are
    still loading, or a bare app) the schemas keep what the request models say, with `model`
    limited to `model_names` / `text_model_names` where given."""

    model_names: list[str] = []
    text_model_names: list[str] = []
    served: Optional[list[ServedModel]] = None
    #: The name a request without `model` (or with "") gets, by kind: "text" (the default text
    #: model), "first" (the first configured model where it embeds text, as /embed_text picks),
    #: "images" (the default image model), "all" (the default scorer of the rerank routes),
    #: "tokens" (the default model of /embed_all), "sparse" (of the sparse routes), "pooling" (of /pooling).
    defaults: dict[str, str] = {}
    max_items: int = 2048
    max_chars: int = 200_000
    #: The other request limits of LIMIT_TEXT, by setting name.
    budgets: dict[str, int] = {}
    auth: bool = False
    rate_limited: bool = False
    #: AUTH_PUBLIC_PATHS: routes served without an API key (None: each operation's `public`).
    public_paths: Optional[list[str]] = None

    @property
    def images(self) -> bool:
        """Whether image requests may be accepted (True while that is not known)."""
        return self.served is None or any(m.images for m in self.served)

    def candidates(self, kind: str) -> list[ServedModel]:
        """The served models a request of `kind` ("text", "all" for reranking, "images", "tokens"
        for token embeddings) may name."""
        if kind == "images":
            return [m for m in self.served or () if m.images]
        if kind == "tokens":
            return [m for m in self.served or () if m.token_embeddings]
        if kind == "sparse":
            return [m for m in self.served or () if m.sparse]
        if kind == "pooling":
            return [m for m in self.served or () if (m.text or m.multi_vector or m.token_embeddings) and not m.classifier]
        if kind == "classifier":
            return [m for m in self.served or () if m.classifier]
        if kind == "token-classifier":
            return [m for m in self.served or () if m.token_classifier]
        return [m for m in self.served or () if m.text or (kind == "all" and (m.pairs or m.multi_vector))]

    def values(self, names: tuple[str, ...]) -> dict[str, int]:
        """The current values of the request limits `names` (those this deployment applies)."""
        known = {"MAX_CLIENT_BATCH_SIZE": self.max_items, "MAX_INPUT_CHARS": self.max_chars, **self.budgets}
        images = self.images
        return {name: known[name] for name in names if name in known and (images or not name.startswith("IMAGE_"))}

    def is_public(self, path: str, declared: bool, method: str = "get") -> bool:
        """Whether `method` on `path` is served without an API key: AUTH_PUBLIC_PATHS opens the
        GET (and HEAD) of its paths only, so `POST /` (TEI's inference route) needs a key."""
        if self.public_paths is None:
            return declared
        listed = path in self.public_paths or ("/docs" in self.public_paths and path.startswith("/docs/"))
        return listed and method in ("get", "head")
