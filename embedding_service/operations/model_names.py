"""Model names as clients send them: Ollama's `name:tag` form.

Ollama names a model `name:tag` (`all-MiniLM-L6-v2:latest`); every route here accepts that form
wherever a model is named. A name is looked up as given first (so a served name or alias that
contains a colon keeps working); failing that, a trailing `:tag` is dropped and the rest must be
a served name or alias exactly, so a tag never lets an unknown name through. Hub ids (`org/model`)
contain no colon and are never cut. Light (no torch): the OpenAPI description uses it too.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # pragma: no cover
    from ..inference.registry import Registry

#: An Ollama tag: a letter, digit or underscore, then up to 79 of those, `.` or `-`.
TAG_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"
_TAG = re.compile(TAG_PATTERN)
#: The tag Ollama lists a model under when none is given.
DEFAULT_TAG = "latest"


def without_tag(name: str) -> Optional[str]:
    """`name` without its trailing `:tag`, or None when it carries no well-formed tag (or nothing
    before it)."""
    base, sep, tag = name.rpartition(":")
    if sep and base and _TAG.fullmatch(tag):
        return base
    return None


def resolve(engines: "Registry", name: Optional[str]) -> Optional[str]:
    """The served label a client's `name` means: `name` itself when served (or empty), else
    `name` without its `:tag` when that is served, else `name` unchanged (the lookup then raises
    ModelNotFound naming it as sent)."""
    if not name or engines.serves(name):
        return name
    base = without_tag(name)
    return base if base is not None and engines.serves(base) else name


def tagged(label: str) -> str:
    """How Ollama lists `label`: `label:latest`, or `label` itself when it already carries a tag."""
    return label if without_tag(label) is not None else f"{label}:{DEFAULT_TAG}"


def name_schema(labels: list[str], empty: bool, nullable: bool = False) -> dict:
    """The JSON Schema of a request's model name: one of `labels` (or "" with `empty`: the
    default), any of them with a tag, or with `nullable` null (the default)."""
    options: list[dict] = [{"type": "string", "enum": ([""] if empty else []) + labels}]
    if labels:
        options.append({"type": "string", "pattern": tagged_pattern(labels)})
    if nullable:
        return {"anyOf": [*options, {"type": "null"}], "default": None}
    return {"anyOf": options} if len(options) > 1 else options[0]


def tagged_pattern(labels: list[str]) -> str:
    """A regular expression (JSON Schema `pattern`, anchored) matching `label:tag` for any of `labels`."""
    return "^(?:" + "|".join(_escape(label) for label in labels) + "):" + TAG_PATTERN + "$"


def _escape(text: str) -> str:
    """`text` as a literal in both Python's and ECMA-262's syntax (only syntax characters escaped)."""
    return re.sub(r"([.^$*+?()\[\]{}|\\/])", r"\\\1", text)
