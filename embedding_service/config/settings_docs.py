"""The settings as users read them: README.md's Configuration table and the set of environment
variable names the service, its images and manifests may carry, both derived from
:class:`settings.Settings`' fields, plus the variables that libraries read.

    python -m embedding_service.config.settings_docs --markdown   # prints README.md's Configuration table
"""

from __future__ import annotations

import sys
from typing import Any, Iterator, NamedTuple

from .settings import SECONDS_ALIASES, SINGLE_KEY, Settings, env_names

#: Variables read by libraries (Hugging Face hub, CUDA, prometheus_client), not by Settings, that
#: users may set: (names, default as shown, meaning). Documented in the README table.
EXTERNAL_ROWS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("CUDA_VISIBLE_DEVICES",), "unset", "which GPUs are visible (counted without importing torch)"),
    (
        ("PROMETHEUS_MULTIPROC_DIR",),
        "`$TMPDIR/embedding-metrics-<PORT>`",
        "where Gunicorn workers write metrics; wiped at start",
    ),
    (
        ("HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE"),
        "unset (images: `HF_HOME=/app/.cache/huggingface`, and `HF_HUB_OFFLINE=1` when built with `BAKE_MODELS`)",
        "Hugging Face cache location, cache-only mode",
    ),
)
#: Every variable the service's environment may carry that Settings does not read itself: the
#: rows above, and what the images set for Python and the build. Images, compose files and
#: manifests set nothing outside the settings and these.
EXTERNAL_ENV: tuple[str, ...] = tuple(name for names, _, _ in EXTERNAL_ROWS for name in names) + (
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED",
    "DEBIAN_FRONTEND",
    "VIRTUAL_ENV",
    "PATH",
)


class EnvVar(NamedTuple):
    """One setting as users see it."""

    name: str  #: the environment variable (the field name upper-cased)
    aliases: tuple[str, ...]  #: other variables read for it (plain aliases, then the special names)
    default: str  #: the default as documented: `unset`, or the value as it would be written
    description: str  #: meaning and units


def _shown(value: Any) -> str:
    if value is None or value == ():
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def env_table() -> Iterator[EnvVar]:
    """Every setting, in declaration order, derived from :class:`Settings`' fields."""
    special = {**SECONDS_ALIASES, SINGLE_KEY: "api_keys"}
    for field, info in Settings.model_fields.items():
        names = env_names(field, info)
        extra = tuple(var for var, target in special.items() if target == field)
        yield EnvVar(names[0], names[1:] + extra, _shown(info.default), info.description or "")


def known_env_names() -> set[str]:
    """Every environment variable name the service understands (settings, aliases, external)."""
    return {name for row in env_table() for name in (row.name, *row.aliases)} | set(EXTERNAL_ENV)


def markdown_table() -> str:
    """README.md's Configuration table: every setting, then the variables libraries read."""
    rows = [
        ((row.name, *row.aliases), "unset" if row.default == "unset" else f"`{row.default}`", row.description)
        for row in env_table()
    ]
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for names, default, meaning in [*rows, *EXTERNAL_ROWS]:
        cells = (", ".join(f"`{name}`" for name in names), default, meaning)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m embedding_service.config.settings_docs --markdown   (prints README.md's Configuration table)")
    sys.stdout.write(markdown_table())
