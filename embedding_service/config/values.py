"""How setting values are read and checked beyond their types: comma lists, device names, local
folders, networks, storage addresses, model aliases. Each check raises ValueError with a message
that the settings turn into a SettingsError naming the variable."""

from __future__ import annotations

import ipaddress
import os
from typing import Any


def split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def kernels_from_bool(value: Any) -> Any:
    """CPU_KERNELS' deprecated boolean spelling (`ONEDNN_LINEAR`): true = `onednn`, false = `mkl`."""
    if isinstance(value, bool):
        return "onednn" if value else "mkl"
    if isinstance(value, str):
        lowered = value.strip().lower()
        return {"true": "onednn", "1": "onednn", "yes": "onednn", "on": "onednn",
                "false": "mkl", "0": "mkl", "no": "mkl", "off": "mkl"}.get(lowered, lowered)
    return value


def lower_hosts(value: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(host.lower().rstrip(".") for host in value)


def check_dirs(value: tuple[str, ...]) -> tuple[str, ...]:
    for folder in value:
        if not os.path.isdir(folder):
            raise ValueError(f"{folder!r} is not a directory")
    return tuple(os.path.realpath(folder) for folder in value)


def check_devices(value: tuple[str, ...]) -> tuple[str, ...]:
    for item in value:
        if not is_device_name(item):
            raise ValueError(f"{item!r} is not a device; use cpu, cuda or cuda:N")
    return value


def check_device(value: str) -> str:
    value = value.strip().lower()
    if value != "auto" and not is_device_name(value):
        raise ValueError(f"{value!r} is not a device; use auto, cpu, cuda or cuda:N")
    return value


def check_storage_uri(value: str) -> str:
    if not value.startswith(("memory://", "redis://", "rediss://", "redis+unix://")):
        raise ValueError("use memory:// or redis://host:port/db")
    return value


def check_networks(value: tuple[str, ...]) -> tuple[str, ...]:
    for item in value:
        if item == "*":
            continue
        try:
            ipaddress.ip_network(item)  # strict (no host bits in a network), as Gunicorn checks the same variable
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8) nor *") from None
    return value


def check_aliases(value: tuple[str, ...]) -> tuple[str, ...]:
    for item in value:
        alias, sep, target = (part.strip() for part in item.partition("="))
        if not sep or not alias or not target or "=" in target:
            raise ValueError(f"{item!r} is not alias=model (e.g. text-embedding-3-small=all-MiniLM-L6-v2)")
    return value


def lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def is_device_name(value: str) -> bool:
    """True for `cpu`, `cuda`, `cuda:N` (N a non-negative integer)."""
    if value in ("cpu", "cuda"):
        return True
    head, _, tail = value.partition(":")
    return head == "cuda" and tail.isdigit()


def api_key_entry(entry: str) -> tuple[str, int]:
    """One `API_KEYS` entry, `key` or `key;priority=N`: (the key, its priority floor: requests with
    it are queued at that priority or a later one; default 0). raises ValueError on another form."""
    key, _, rest = entry.partition(";")
    key = key.strip()
    if not key:
        raise ValueError("an API key is empty")
    if not rest:
        return key, 0
    name, _, value = rest.partition("=")
    if name.strip() != "priority":
        raise ValueError(f"an API key's option must be priority=N, got {name.strip()[:20]!r}")
    try:
        return key, int(value.strip())
    except ValueError:
        raise ValueError("an API key's priority must be an integer") from None


def check_api_keys(keys: tuple) -> tuple:
    """Every `API_KEYS` entry in a form `api_key_entry` reads (checked at start-up)."""
    for key in keys:
        api_key_entry(key.get_secret_value() if hasattr(key, "get_secret_value") else str(key))
    return keys
