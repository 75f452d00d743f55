"""The model registry: every served model by name and alias, the default of each kind, and
each model's batcher. Built once per process (per Gunicorn worker) by :meth:`Registry.load`."""

from __future__ import annotations

import logging
import time
from typing import Callable, Optional, Sequence

import torch

from .batching import Batcher
from .errors import BadRequest, ModelNotFound
from .models.base import Model
from .models.detect import detect_kind
from .models.files import ModelFiles
from .models.onednn import use_onednn_linear, warm_kernels
from .models.spec import ModelSpec, model_specs
from .settings import Settings, SettingsError

log = logging.getLogger("embedding_service.registry")


def _load_text(spec: ModelSpec, device: str, dtype: str, files: ModelFiles) -> Model:
    from .models.text import load_text_model

    return load_text_model(spec, device, dtype, files)


def _load_multimodal(spec: ModelSpec, device: str, dtype: str, files: ModelFiles) -> Model:
    from .models.multimodal import load_multimodal_model

    return load_multimodal_model(spec, device, dtype, files)


def _load_reranker(spec: ModelSpec, device: str, dtype: str, files: ModelFiles) -> Model:
    from .models.detect import is_decoder

    config = files.config()
    architectures = [str(a) for a in config.get("architectures") or []]
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        from .models.cross_encoder import CrossEncoderReranker

        return CrossEncoderReranker(spec, device, dtype, files, config)
    if is_decoder(config):
        from .models.qwen3_reranker import Qwen3Reranker

        return Qwen3Reranker(spec, device, dtype, files, config)
    raise SettingsError(
        f"model {spec.name!r}: a reranker must be a sequence-classification cross-encoder or a "
        "Qwen3-Reranker-style causal LM"
    )


#: kind -> loader(spec, device, dtype, files). One module per model family under models/.
LOADERS: dict[str, Callable[[ModelSpec, str, str, ModelFiles], Model]] = {
    "text": _load_text,
    "multimodal": _load_multimodal,
    "rerank": _load_reranker,
}


#: How to configure a model of each kind, for the 400 when none is served.
KIND_HINTS = {
    "multimodal": "; set MODEL_NAME (or add to MODELS) a multimodal model such as google/siglip2-so400m-patch16-naflex",
    "rerank": "; add a reranker to MODELS, such as Qwen/Qwen3-Reranker-0.6B",
}


class Registry:
    """Loaded models. `get(name, kinds)` resolves a request's `model` field."""

    def __init__(self, models: Sequence[Model], settings: Settings, device: str):
        self.models = list(models)
        self.device = device
        self.settings = settings
        self._by_label: dict[str, Model] = {}
        for model in self.models:
            for label in (model.name, *model.aliases):
                self._by_label[label] = model
        self.batchers = {
            model.name: Batcher(
                model,
                settings.max_batch_size,
                settings.max_batch_tokens,
                settings.batch_timeout_ms,
                settings.max_queue_size,
            )
            for model in self.models
        }
        self.load_seconds = sum(model.load_seconds for model in self.models)

    @classmethod
    def load(cls, settings: Settings, device: str, warmup: bool = True) -> "Registry":
        """Load every configured model onto `device` (`cpu`, `cuda`, `cuda:N`).

        raises SettingsError naming the model when one cannot be loaded or is misconfigured.
        """
        models = []
        for spec in model_specs(settings):
            started = time.perf_counter()
            files = ModelFiles(spec.reference)
            kind = detect_kind(spec, files.config())
            loader = LOADERS.get(kind)
            if loader is None:
                raise SettingsError(
                    f"model {spec.name!r} is a {kind} model; this version serves {' and '.join(LOADERS)} models"
                )
            try:
                model = loader(spec, device, settings.dtype, files)
            except SettingsError:
                raise
            except Exception as exc:  # from_pretrained's many failure types
                raise SettingsError(f"model {spec.name!r} could not be loaded: {type(exc).__name__}: {exc}") from exc
            if device == "cpu" and settings.onednn_linear:
                switched = use_onednn_linear(model.model)
                kernels = warm_kernels(model.model, [torch.get_num_threads()]) if switched and warmup else 0
                log.info("model %s: %d linear layers through oneDNN, %d kernels built", spec.name, switched, kernels)
            if warmup:
                model.warmup()
            model.load_seconds = time.perf_counter() - started
            log.info("loaded %s model %s on %s in %.1fs", kind, spec.name, device, model.load_seconds)
            models.append(model)
        return cls(models, settings, device)

    @property
    def default(self) -> Model:
        """The first configured model (seed 000's MODEL_NAME)."""
        return self.models[0]

    def default_of(self, kind: str) -> Optional[Model]:
        return next((m for m in self.models if m.kind == kind), None)

    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def get(
        self,
        name: Optional[str],
        kinds: Sequence[str],
        purpose: str,
        prefer_first: bool = False,
        missing_param: str = "model",
    ) -> Model:
        """The model called `name`; when `name` is empty, the default of the first of `kinds` that
        has one (with `prefer_first`, the first configured model if it can do the job, as seed
        000's `/embed_text` uses MODEL_NAME's text tower).

        raises ModelNotFound (404) listing the served models; BadRequest (400) when the model is
        of a kind that cannot do `purpose` (e.g. "text embeddings").
        """
        if not name:
            if prefer_first and self.default.kind in kinds:
                return self.default
            for kind in kinds:
                model = self.default_of(kind)
                if model is not None:
                    return model
            hint = KIND_HINTS.get(kinds[-1], "")
            raise BadRequest(
                f"no model that can do {purpose} is configured (served: {', '.join(self.names())}){hint}",
                param=missing_param,
            )
        model = self._by_label.get(name)
        if model is None:
            served = ", ".join(f"{m.name} (aliases: {', '.join(m.aliases)})" if m.aliases else m.name for m in self.models)
            raise ModelNotFound(f"model {name!r} is not served here; served models: {served}", param="model")
        if model.kind not in kinds:
            raise BadRequest(f"model {model.name!r} is a {model.kind} model and cannot do {purpose}", param="model")
        return model
