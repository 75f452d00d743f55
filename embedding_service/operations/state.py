"""What one serving process is doing, owned in one place: its phase, its engines once loaded, the
image loader, the per-request budgets and which worker it is.

The boot path (`embedding_service.process.boot`) builds a :class:`ServiceState`, hands it to the app
factory and moves it through its phases; the views only read it. No Flask and no torch here.
"""

from __future__ import annotations

import enum
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from ..domain.errors import Unavailable
from ..config.settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from ..images import ImageLoader
    from ..inference.registry import Registry


class Phase(enum.Enum):
    """A worker's life: LOADING -> READY -> DRAINING (after SIGTERM), or LOADING -> FAILED."""

    LOADING = "loading"
    READY = "ready"
    DRAINING = "draining"
    FAILED = "failed"


@dataclass(frozen=True)
class RequestBudgets:
    """Per-request budgets the dialect-free operations enforce (413 beyond each), all counted
    before any tokenising: `max_client_batch_size` inputs or documents per request
    (MAX_CLIENT_BATCH_SIZE); `max_input_chars` characters per text input as the model sees it,
    prompt or instruction included (MAX_INPUT_CHARS); `max_request_chars` such characters summed
    over the request, for reranking with a pair model the query (and instruction) once per
    document (MAX_REQUEST_CHARS); `max_rerank_chunks` document chunks per rerank request with
    `max_chunks_per_doc`, counted after chunking and before any forward pass (MAX_RERANK_CHUNKS);
    `max_embed_all_tokens` token vectors per `/embed_all` request, counted after tokenising and
    before any forward pass (MAX_EMBED_ALL_TOKENS); `chunked_embeddings`, whether an embedding
    request that does not say embeds over-long texts in windows (CHUNKED_EMBEDDINGS), and
    `max_embed_chunks` windows per such request (MAX_EMBED_CHUNKS)."""

    max_client_batch_size: int
    max_input_chars: int
    max_request_chars: int
    max_rerank_chunks: int
    max_embed_all_tokens: int = 16384
    chunked_embeddings: bool = False
    max_embed_chunks: int = 4096

    @classmethod
    def from_settings(cls, settings: Settings) -> "RequestBudgets":
        return cls(
            max_client_batch_size=settings.max_client_batch_size,
            max_input_chars=settings.max_input_chars,
            max_request_chars=settings.max_request_chars,
            max_rerank_chunks=settings.max_rerank_chunks,
            max_embed_all_tokens=settings.max_embed_all_tokens,
            chunked_embeddings=settings.chunked_embeddings,
            max_embed_chunks=settings.max_embed_chunks,
        )


@dataclass(frozen=True)
class WorkerInfo:
    """Which process this is: `pid`, Gunicorn `slot` (None outside Gunicorn), the `device` its
    models run on, whether torch sees a GPU (`cuda_available`) and when it `started` (Unix
    seconds)."""

    device: str
    slot: Optional[int] = None
    cuda_available: bool = False
    pid: int = field(default_factory=os.getpid)
    started: int = field(default_factory=lambda: int(time.time()))


class ServiceState:
    """The one owner of a process's serving state. Phase changes go through `mark_ready`, `fail` and
    `drain`; `engines` is None until `mark_ready`."""

    def __init__(self, settings: Settings, worker: WorkerInfo, images: "ImageLoader", model_names: list[str]):
        self.settings = settings
        self.budgets = RequestBudgets.from_settings(settings)
        self.worker = worker
        self.images = images
        self.model_names = list(model_names)
        self.engines: Optional["Registry"] = None
        self._phase = Phase.LOADING
        self._lock = threading.Lock()

    @classmethod
    def create(cls, settings: Settings, worker: WorkerInfo) -> "ServiceState":
        """A state in phase LOADING, with the image loader (and its metrics observer) and the
        configured model names (no model loaded yet)."""
        from ..images import ImageLoader
        from ..config.model_specs import model_specs

        images = ImageLoader(settings)
        if settings.metrics:
            from ..observability.metrics import ImageObserver

            images.observer = ImageObserver()
        return cls(settings, worker, images, [spec.name for spec in model_specs(settings)])

    @property
    def phase(self) -> Phase:
        return self._phase

    def mark_ready(self, engines: "Registry") -> None:
        """The engines are loaded and warm: answer requests (unless already draining)."""
        with self._lock:
            self.engines = engines
            if self._phase is Phase.LOADING:
                self._phase = Phase.READY
        if self.settings.metrics:
            from ..observability.metrics import engines_ready

            engines_ready(engines)

    def fail(self) -> None:
        """Loading failed: `/ready` stays 503 for good."""
        with self._lock:
            self._phase = Phase.FAILED

    def drain(self) -> None:
        """SIGTERM: `/ready` answers 503 while in-flight requests finish."""
        with self._lock:
            self._phase = Phase.DRAINING

    def require_engines(self) -> "Registry":
        """The loaded engines; raises Unavailable (503, Retry-After 5) while still loading."""
        engines = self.engines
        if engines is None:
            raise Unavailable(
                "the models are still loading; retry shortly (GET /ready says when)", retry_after=5
            )
        return engines
