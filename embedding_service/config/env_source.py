"""Reading the environment into settings: which variables a setting is read from (its name, then
its plain aliases), the `.env` file under the process environment, and the two older names with
special handling (`API_KEY` merged into `API_KEYS`; `BATCH_TIMEOUT` in seconds as
`BATCH_TIMEOUT_MS`). A bad value becomes a :class:`SettingsError` naming the variable."""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional

from dotenv import dotenv_values
from pydantic import AliasChoices, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource


class SettingsError(ValueError):
    """A configuration value is missing, malformed or contradictory; the message names it."""


#: A single API key (an older name), merged with the `API_KEYS` list.
SINGLE_KEY = "API_KEY"
#: The batching timeout in seconds (an older name): converted to `BATCH_TIMEOUT_MS`, and read only
#: when `BATCH_TIMEOUT_MS` is unset.
SECONDS_ALIASES = {"BATCH_TIMEOUT": "batch_timeout_ms"}


def environment(environ: Optional[Mapping[str, str]], env_file: Optional[str]) -> dict[str, str]:
    """`environ` (default `os.environ`) over the variables of `env_file` when it exists."""
    merged: dict[str, str] = {}
    if env_file and os.path.isfile(env_file):
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged


def env_names(name: str, info: FieldInfo) -> tuple[str, ...]:
    """The variables a field is read from, in precedence order: its own name, then plain aliases."""
    alias = info.validation_alias
    choices = alias.choices if isinstance(alias, AliasChoices) else [alias] if isinstance(alias, str) else []
    own = name.upper()
    return (own, *(c for c in choices if isinstance(c, str) and c != own))


class EnvMapping(EnvSettingsSource):
    """Settings values from one mapping of environment variables (exact names, stripped values,
    blank = unset), with the two special names: `API_KEY` merged into `API_KEYS`, and
    `BATCH_TIMEOUT` (seconds) as `BATCH_TIMEOUT_MS` when that is unset.

    raises SettingsError when `BATCH_TIMEOUT` is not a number.
    """

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self.raw = env
        self.names = {field: env_names(field, info) for field, info in settings_cls.model_fields.items()}
        declared = {var for names in self.names.values() for var in names}
        self.given = {k: v.strip() for k, v in env.items() if k in declared and v is not None and v.strip()}
        self.typed: dict[str, Any] = {}  # first env name -> value, past string parsing
        self.origin: dict[str, str] = {}  # field -> the variable its value came from, when special
        keys_var = self.names["api_keys"][0]
        keys = [(env.get(SINGLE_KEY) or "").strip(), *(env.get(keys_var) or "").split(",")]
        keys = [key.strip() for key in keys if key.strip()]
        if keys:  # a tuple, so that API_KEY is one key even with a comma in it
            self.given.pop(keys_var, None)
            self.typed[keys_var] = tuple(keys)
        for var, field in SECONDS_ALIASES.items():
            raw = env.get(var)
            target = self.names[field][0]
            if raw is None or raw.strip() == "" or target in self.given:
                continue
            try:
                self.typed[target] = float(raw) * 1000.0
            except ValueError:
                raise SettingsError(f"{var}={raw!r}: expected a number of seconds") from None
            self.origin[field] = var
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, Optional[str]]:
        return self.given

    def __call__(self) -> dict[str, Any]:
        return {**super().__call__(), **self.typed}

    def error(self, exc: ValidationError) -> SettingsError:
        """The first error of `exc` as `VAR='raw': message`, naming the variable that was set."""
        err = exc.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else "?"
        field = next((f for f, names in self.names.items() if key in (f, names[0])), None)
        if field is None:
            var = key.upper()
        else:
            names = self.names[field]
            var = self.origin.get(field) or next((n for n in names if n in self.given), names[0])
        raw = "<hidden>" if var == "API_KEYS" else self.raw.get(var, "")
        return SettingsError(f"{var}={raw!r}: {err['msg']}")
