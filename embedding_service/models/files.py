"""Reading a model's own files: a local directory or a Hugging Face hub id (cache honoured).

Hub access goes through `huggingface_hub.hf_hub_download`, so `HF_HOME`, `HF_HUB_CACHE` and
`HF_HUB_OFFLINE` behave as they do for `from_pretrained`. No torch here.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

from ..config.settings import SettingsError


class ModelFiles:
    """JSON files of one model reference (directory or hub id); errors call the model `name`
    (default: the reference), so a folder it was resolved to is never shown."""

    def __init__(self, reference: str, name: Optional[str] = None):
        self.reference = reference
        self.name = name or reference
        self.is_local = os.path.isdir(reference)
        self._cache: dict[str, Optional[Any]] = {}

    def json(self, filename: str) -> Optional[Any]:
        """The parsed JSON file `filename`, or None when the model has no such file.

        raises SettingsError when the file exists but is not valid JSON.
        """
        if filename in self._cache:
            return self._cache[filename]
        path = self._path(filename)
        data = None
        if path is not None:
            try:
                with open(path, "r", encoding="utf-8") as handle:
                    data = json.load(handle)
            except json.JSONDecodeError:
                raise SettingsError(f"model {self.name!r}: {filename} is not valid JSON") from None
        self._cache[filename] = data
        return data

    def has(self, filename: str) -> bool:
        """Whether the model has the file `filename` (a local file, or on the hub or in its cache)."""
        return self._path(filename) is not None

    def path(self, filename: str) -> Optional[str]:
        """The local path of `filename` (downloaded into the hub cache first), None when absent."""
        return self._path(filename)

    def _path(self, filename: str) -> Optional[str]:
        if self.is_local:
            path = os.path.join(self.reference, filename)
            return path if os.path.isfile(path) else None
        try:
            from huggingface_hub import hf_hub_download

            return hf_hub_download(self.reference, filename)
        except Exception:  # missing file, offline without cache, gated repo: treat as absent
            return None

    def config(self) -> dict:
        """`config.json`; raises SettingsError when the model has none (not a model)."""
        data = self.json("config.json")
        if not isinstance(data, dict):
            where = "directory" if self.is_local else "hub id (is it cached, or is HF_HUB_OFFLINE set?)"
            raise SettingsError(f"model {self.name!r}: no config.json found for this {where}")
        return data
