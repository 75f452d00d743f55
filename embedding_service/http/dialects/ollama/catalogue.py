"""Ollama's catalogue: `GET /api/tags`, `POST /api/show`, `GET /api/version`, `GET /api/ps`, in
Ollama's shapes (the fields the official `ollama` SDK and Ollama's own clients read), so tools
that list a server's models before using one (Open WebUI, langchain-ollama's model check,
`ollama list`) see the served models.

- `/api/tags` lists every name a request may use (each served model and each of its aliases,
  `MODEL_ALIASES` included) as Ollama lists models: `name:latest` (a name with a tag is listed as
  it is). Names of one model share its `digest`. Any tag works in requests (see `names.py`).
- `/api/ps` lists each served model once: models stay loaded for the worker's life, so
  `expires_at` is the far future.
- `/api/version` is this service's version.
- `modified_at` is when the answering worker started; `size` is the bytes of the model's weights
  as loaded; `details.format` is "transformers", `details.quantization_level` the weights' dtype
  (`F32`, `F16`, `BF16`); `details.family` the checkpoint's `model_type`.

Errors are Ollama's `{"error": str}`.
"""

from __future__ import annotations

import hashlib
import weakref
from datetime import datetime, timezone

from .... import __version__
from ....inference.engine import Capability, Engine
from ...errors import ErrorStyle
from .responses import OllamaProcesses, OllamaShowResponse, OllamaTags, OllamaVersion
from ...schemas import parse
from .schemas import OllamaShowRequest
from ...json_io import engines, json_body, json_response, state
from ...budgets import NO_ITEMS
from ...routing import ApiBlueprint
from ....operations.model_names import resolve, tagged

bp = ApiBlueprint("ollama_catalogue", __name__, tag="Ollama", error_style=ErrorStyle.FLAT)

#: `/api/ps`' `expires_at`: models are never unloaded.
NEVER = "9999-12-31T23:59:59Z"
QUANTIZATION = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}


_WEIGHTS: "weakref.WeakKeyDictionary[Engine, tuple[int, int]]" = weakref.WeakKeyDictionary()


def _weights(engine: Engine) -> tuple[int, int]:
    """(parameters, bytes of parameters and buffers) of the engine's torch module, counted once."""
    known = _WEIGHTS.get(engine)
    if known is None:
        module = engine.model.model
        parameters = list(module.parameters())
        count = sum(p.numel() for p in parameters)
        size = sum(t.numel() * t.element_size() for t in (*parameters, *module.buffers()))
        known = _WEIGHTS[engine] = (count, size)
    return known


def _family(engine: Engine) -> str:
    config = getattr(engine.model.model, "config", None)
    return str(getattr(config, "model_type", None) or engine.model.kind)


def human_count(count: int) -> str:
    """A parameter count as Ollama writes it: `22.7M`, `137M`, `0.6B`."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size or unit == "K":
            value = count / size
            return f"{value:.0f}{unit}" if value >= 100 else f"{value:.1f}{unit}"
    return str(count)  # pragma: no cover


def _modified_at() -> str:
    return datetime.fromtimestamp(state().worker.started, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _details(engine: Engine) -> dict:
    family = _family(engine)
    count, _ = _weights(engine)
    return {
        "parent_model": "",
        "format": "transformers",
        "family": family,
        "families": [family],
        "parameter_size": human_count(count),
        "quantization_level": QUANTIZATION.get(engine.info().get("dtype", ""), str(engine.info().get("dtype", "")).upper()),
    }


def _entry(engine: Engine, label: str) -> dict:
    name = tagged(label)
    return {
        "name": name,
        "model": name,
        "modified_at": _modified_at(),
        "size": _weights(engine)[1],
        "digest": hashlib.sha256(engine.name.encode()).hexdigest(),
        "details": _details(engine),
    }


def _capabilities(engine: Engine) -> list[str]:
    """Ollama's capability names: `embedding` for models that embed text, `vision` for images."""
    found = []
    if engine.can(Capability.EMBED_TEXT):
        found.append("embedding")
    if engine.can(Capability.EMBED_IMAGES):
        found.append("vision")
    return found


@bp.operation("GET", "/api/tags", summary="Ollama: served models, each name and alias as name:latest", response=OllamaTags, errors=(503,))
def tags():
    """`{"models": [{"name", "model", "modified_at", "size", "digest", "details"}]}`."""
    return json_response({"models": [_entry(e, label) for e in engines().engines for label in (e.name, *e.aliases)]})


@bp.operation("GET", "/api/ps", summary="Ollama: loaded models (every served model, never unloaded)", response=OllamaProcesses, errors=(503,))
def ps():
    """`{"models": [{..., "expires_at", "size_vram", "context_length"}]}`, one per served model."""
    rows = []
    for engine in engines().engines:
        row = _entry(engine, engine.name)
        row.update(
            expires_at=NEVER,
            size_vram=row["size"] if str(engine.model.device).startswith("cuda") else 0,
            context_length=int(engine.model.max_length),
        )
        rows.append(row)
    return json_response({"models": rows})


@bp.operation(
    "POST", "/api/show", summary="Ollama: one model's details (model, or name; the default text model if neither)",
    request=OllamaShowRequest, response=OllamaShowResponse, errors=(400, 404, 415, 503), models="all",
    budget=NO_ITEMS,
)
def show():
    """`{"model" | "name", "verbose"?}` -> `{"modelfile", "parameters", "template", "details",
    "model_info", "capabilities", "modified_at"}`; an unknown name is a 404 listing the served ones."""
    req = parse(OllamaShowRequest, json_body())
    label = req.label()
    reg = engines()
    if label:
        engine = reg.find(resolve(reg, label))
    else:
        engine = reg.default(Capability.EMBED_TEXT) if reg.has(Capability.EMBED_TEXT) else reg.first
    family = _family(engine)
    count, _ = _weights(engine)
    info = {
        "general.architecture": family,
        "general.basename": engine.name,
        "general.parameter_count": count,
        f"{family}.context_length": int(engine.model.max_length),
    }
    if engine.can(Capability.EMBED_TEXT) or engine.can(Capability.EMBED_IMAGES):
        info[f"{family}.embedding_length"] = int(engine.model.dimension)
    return json_response(
        {
            "modelfile": f"# served by embedding_service\nFROM {engine.name}\n",
            "parameters": "",
            "template": "",
            "license": "",
            "details": _details(engine),
            "model_info": info,
            "capabilities": _capabilities(engine),
            "modified_at": _modified_at(),
        }
    )


@bp.operation("GET", "/api/version", summary="Ollama: this service's version", response=OllamaVersion)
def version():
    """`{"version"}`: this service's version."""
    return json_response({"version": __version__})
