"""The registry: every served engine by name and alias, and the default engine of each capability.
Built once per process (per Gunicorn worker) by :meth:`Registry.load`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any, Optional, Sequence

from . import compute
from .cpu.kernels import apply_cpu_kernels
from .batch_plan import BatchBounds
from .engine import Capability, Engine
from ..domain.errors import InvalidInput, ModelNotFound
from ..models.interfaces import Model
from ..models.families import load_model
from ..config.model_specs import ModelSpec, model_specs
from .cpu.precision import apply_precision, uses_bf16
from ..inference.runtime import Runtime
from ..config.settings import Settings
from .vector_cache import build_vector_cache

log = logging.getLogger("embedding_service.inference.registry")

#: How to configure a model with each capability, for the 400 when none is served.
HINTS = {
    Capability.EMBED_IMAGES: "; set MODEL_NAME (or add to MODELS) a multimodal model such as google/siglip2-so400m-patch16-naflex",
    Capability.SCORE_PAIRS: "; add a reranker to MODELS, such as Qwen/Qwen3-Reranker-0.6B",
    Capability.SPARSE: "; add a sparse model to MODELS, such as naver/splade-v3 or BAAI/bge-m3",
    Capability.MULTI_VECTOR: "; add a multi-vector model to MODELS, such as BAAI/bge-m3 or lightonai/GTE-ModernColBERT-v1",
}

#: How much of a name a client sent is echoed in an error message (a name can be megabytes long).
ECHO_CHARS = 200


def load_numerics(spec: ModelSpec, dtype: str, runtime: Runtime, warm: bool = True) -> Model:
    """Load `spec` onto `runtime.device` with its precision (precision.py: the model's `dtype`
    option or DTYPE `dtype`, self-checked against float32 on the CPU) and its CPU kernels
    (acceleration.py: `runtime.cpu_kernels`, `auto` measured on the model's own layers; a model
    in bf16 gets the bf16 kernels before its self-check, so the check measures what serves).
    raises SettingsError naming the model."""
    device = runtime.device
    model = load_model(spec, device, dtype)
    requested = spec.option("dtype") or dtype

    def bf16_kernels(candidate: Model) -> None:
        candidate.cpu_kernels = apply_cpu_kernels(candidate.model, "bf16", runtime.thread_counts, warm=warm, name=spec.name)

    model = apply_precision(
        model, requested, device, reload=lambda: load_model(spec, device, "float32"),
        kernels=bf16_kernels if device == "cpu" else None,
    )
    if not (device == "cpu" and uses_bf16(model)):
        model.cpu_kernels = apply_cpu_kernels(model.model, runtime.cpu_kernels, runtime.thread_counts, warm=warm, name=spec.name)
    return model


def _load_warm(spec: ModelSpec, dtype: str, runtime: Runtime, warmup: bool) -> Model:
    model = load_numerics(spec, dtype, runtime, warm=warmup)
    if warmup:
        model.warmup()
    return model


class Registry:
    """Loaded engines, in configuration order. `get(name, capability)` resolves a request's
    `model` field; `default(capability)` is the engine used when a request names none."""

    def __init__(self, engines: Sequence[Engine], device: str):
        self.engines = list(engines)
        self.device = device
        self._by_label: dict[str, Engine] = {}
        for engine in self.engines:
            for label in (engine.name, *engine.aliases):
                self._by_label[label] = engine
        self._defaults = {capability: self._first(capability) for capability in Capability}

    def _first(self, capability: Capability) -> Optional[Engine]:
        """The first engine with `capability`; for text, a text-only model before a multimodal one."""
        able = [e for e in self.engines if e.can(capability)]
        if capability is Capability.EMBED_TEXT:
            able.sort(key=lambda e: Capability.EMBED_IMAGES in e.capabilities)
        return able[0] if able else None

    @classmethod
    def load(cls, settings: Settings, runtime: Runtime, warmup: bool = True, observer: Any = "auto") -> "Registry":
        """Load every configured model onto `runtime.device`, apply its CPU kernels, warm it (on
        the process's compute thread, where its forward passes will run: compute.py) and wrap it
        in an Engine with `runtime`'s CPU share, the worker's vector cache (VECTOR_CACHE) and
        (METRICS on, `observer="auto"`) the Prometheus observer.

        raises SettingsError naming the model when one cannot be loaded or is misconfigured.
        """
        if observer == "auto":
            observer = None
            if settings.metrics:
                from ..observability.metrics import BatchObserver

                observer = BatchObserver()
        limits = BatchBounds.from_settings(settings)
        cache = build_vector_cache(settings, observer)  # one per worker, every model's entries in it
        engines = []
        for spec in model_specs(settings):
            if "unpadded" not in spec.options:  # UNPADDED is every model's default for its option
                spec = replace(spec, options={**spec.options, "unpadded": settings.unpadded})
            started = time.perf_counter()
            model = compute.run(_load_warm, spec, settings.dtype, runtime, warmup)
            seconds = time.perf_counter() - started
            log.info(
                "loaded %s model %s on %s in %.1fs (%s, CPU kernels %s)", model.kind, spec.name, runtime.device,
                seconds, model.precision, model.cpu_kernels,
            )
            engines.append(Engine(model, limits, observer=observer, cpu_share=runtime.cpu_share, load_seconds=seconds,
                                  cache=cache))
        return cls(engines, runtime.device)

    @property
    def first(self) -> Engine:
        """The first configured engine (MODEL_NAME when set)."""
        return self.engines[0]

    def names(self) -> list[str]:
        return [e.name for e in self.engines]

    def has(self, capability: Capability) -> bool:
        """Whether any served engine has `capability`."""
        return self._defaults[capability] is not None

    def default(self, capability: Capability, param: str = "model") -> Engine:
        """The default engine for `capability`; raises InvalidInput (400) when none can do it."""
        engine = self._defaults[capability]
        if engine is None:
            raise InvalidInput(
                f"no model that can do {capability.value} is configured (served: {', '.join(self.names())})"
                f"{HINTS.get(capability, '')}",
                param=param,
            )
        return engine

    def get(self, name: Optional[str], capability: Capability, param: str = "model", prefer_first: bool = False) -> Engine:
        """The engine called `name` (a name or alias), which must have `capability`; when `name`
        is empty, the default for `capability` (with `prefer_first`, the first configured engine
        if it has it, as `/embed_text` uses MODEL_NAME's text tower).

        raises ModelNotFound (404) listing the served models; InvalidInput (400) when the model
        cannot do `capability` or none is configured that can.
        """
        if not name:
            if prefer_first and self.first.can(capability):
                return self.first
            return self.default(capability, param)
        engine = self.find(name)
        if not engine.can(capability):
            raise InvalidInput(f"model {engine.name!r} is a {engine.model.kind} model and cannot do {capability.value}", param="model")
        return engine

    def serves(self, label: str) -> bool:
        """Whether `label` is exactly a served model's name or alias."""
        return label in self._by_label

    def find(self, name: str) -> Engine:
        """The engine called exactly `name` (a name or alias), whatever it can do; raises
        ModelNotFound (404) listing the served models. The names clients send (Ollama's `:tag`
        included) are resolved before, by `operations.model_names.resolve`."""
        engine = self._by_label.get(name)
        if engine is None:
            served = ", ".join(f"{e.name} (aliases: {', '.join(e.aliases)})" if e.aliases else e.name for e in self.engines)
            shown = name if len(name) <= ECHO_CHARS else name[:ECHO_CHARS] + f"... ({len(name)} characters)"
            raise ModelNotFound(f"model {shown!r} is not served here; served models: {served}", param="model")
        return engine
