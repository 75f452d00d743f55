"""Service configuration, read once at start-up (SPEC §4).

Values come from the process environment, then from a `.env` file in the working directory
(python-dotenv; the environment wins). Every variable is listed in README.md with its default.
A bad value raises :class:`SettingsError` naming the variable, so the service fails at start-up
instead of at the first request.

This module must stay light: Gunicorn's master imports it, and the master never imports torch.
"""

from __future__ import annotations

import os
from typing import Any, Literal, Mapping, Optional

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator


class SettingsError(ValueError):
    """A configuration value is missing, malformed or contradictory; the message names it."""


#: Environment variable -> Settings field. Aliases (seed names) map to the same field.
ENV_FIELDS: dict[str, str] = {
    "HOST": "host",
    "PORT": "port",
    "MODEL_NAME": "model_name",
    "EMBEDDING_MODEL": "embedding_model",
    "RERANK_MODEL": "rerank_model",
    "MODELS": "models",
    "DEVICE": "device",
    "DEVICES": "devices",
    "DTYPE": "dtype",
    "WORKERS": "workers",
    "THREADS": "threads",
    "TIMEOUT": "timeout",
    "GRACEFUL_TIMEOUT": "graceful_timeout",
    "MAX_BATCH_SIZE": "max_batch_size",
    "MAX_BATCH_TOKENS": "max_batch_tokens",
    "BATCH_TIMEOUT_MS": "batch_timeout_ms",
    "MAX_CLIENT_BATCH_SIZE": "max_client_batch_size",
    "CPU_SHARE": "cpu_share",
    "ONEDNN_LINEAR": "onednn_linear",
    "MAX_QUEUE_SIZE": "max_queue_size",
    "MAX_CONCURRENT_REQUESTS": "max_concurrent_requests",
    "MAX_CONTENT_LENGTH": "max_content_length",
    "LOG_LEVEL": "log_level",
    "IMAGE_MAX_BYTES": "image_max_bytes",
    "IMAGE_MAX_PIXELS": "image_max_pixels",
    "IMAGE_FETCH_TIMEOUT": "image_fetch_timeout",
    "IMAGE_ALLOW_PRIVATE_URLS": "image_allow_private_urls",
    "IMAGE_URL_ALLOWED_HOSTS": "image_url_allowed_hosts",
    "IMAGE_LOCAL_DIRS": "image_local_dirs",
    "IMAGE_FETCH_WORKERS": "image_fetch_workers",
    "API_KEYS": "api_keys",
    "AUTH_PUBLIC_PATHS": "auth_public_paths",
    "RATE_LIMIT_REQUESTS": "rate_limit_requests",
    "RATE_LIMIT_WINDOW": "rate_limit_window",
    "RATE_LIMIT_STORAGE_URI": "rate_limit_storage_uri",
    "MAX_INPUT_CHARS": "max_input_chars",
    "CORS_ORIGINS": "cors_origins",
    "LOG_FORMAT": "log_format",
    "METRICS": "metrics",
}
#: Seed 000/003 name for a single key; merged into API_KEYS.
SINGLE_KEY = "API_KEY"
#: Variables the service's environment may carry that Settings does not read itself: they are
#: read by the libraries (Hugging Face hub cache, CUDA, prometheus_client) or by Python and the
#: images. Images, compose files and manifests set nothing outside ENV_FIELDS and these.
EXTERNAL_ENV = (
    "HF_HOME",
    "HF_HUB_CACHE",
    "HF_HUB_OFFLINE",
    "CUDA_VISIBLE_DEVICES",
    "PROMETHEUS_MULTIPROC_DIR",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED",
    "DEBIAN_FRONTEND",
    "VIRTUAL_ENV",
    "PATH",
)


def known_env_names() -> set[str]:
    """Every environment variable name the service understands (settings, seed aliases, external)."""
    return set(ENV_FIELDS) | set(SECONDS_ALIASES) | {SINGLE_KEY} | set(EXTERNAL_ENV)
#: Seed 003 gives the batching timeout in seconds.
SECONDS_ALIASES = {"BATCH_TIMEOUT": "batch_timeout_ms"}


class Settings(BaseModel):
    """Typed, immutable service settings. Field docs give units and defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "0.0.0.0"
    port: int = Field(8080, ge=1, le=65535)
    #: Seed 000's default model (any kind); served first and the default of its kind.
    model_name: Optional[str] = None
    #: Default text embedding model.
    embedding_model: Optional[str] = None
    #: Default reranker (its kind is `rerank` whatever detection says).
    rerank_model: Optional[str] = None
    #: Extra models: comma-separated `[alias=]reference[;option=value...]` or a JSON list.
    models: Optional[str] = None
    #: `auto` (GPUs when visible, else CPU), `cpu`, `cuda` or `cuda:N` (single-process use).
    device: str = "auto"
    #: Device slots given to Gunicorn workers, e.g. `cuda:0,cuda:1`; empty = derive from DEVICE.
    devices: tuple[str, ...] = ()
    #: `auto` (float32 on CPU, float16 on CUDA), `float32`, `float16`, `bfloat16`.
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    #: Gunicorn workers; 0 = one per device slot (one on CPU).
    workers: int = Field(0, ge=0, le=256)
    #: Request threads per Gunicorn worker (gthread).
    threads: int = Field(32, ge=1, le=1024)
    #: Gunicorn worker timeout, seconds.
    timeout: int = Field(120, ge=1)
    #: Seconds in-flight requests get to finish after SIGTERM.
    graceful_timeout: int = Field(30, ge=1)
    #: Items per forward pass.
    max_batch_size: int = Field(32, ge=1)
    #: Padded tokens per forward pass (items x longest item).
    max_batch_tokens: int = Field(16384, ge=1)
    #: Milliseconds the batcher may wait to fill a batch.
    batch_timeout_ms: float = Field(0.0, ge=0, le=10_000)
    #: CPU workers size torch's threads per forward pass by how many workers are busy (cpu_share.py).
    cpu_share: bool = True
    #: float32 linear layers on the CPU run through oneDNN instead of MKL (models/onednn.py).
    onednn_linear: bool = True
    #: Items queued per model before requests are refused with 503 (0 = no limit).
    max_queue_size: int = Field(8192, ge=0)
    #: Inference requests in flight per worker before 503 (0 = no limit beyond THREADS).
    max_concurrent_requests: int = Field(0, ge=0)
    #: Inputs or documents per request (413 beyond); OpenAI's limit.
    max_client_batch_size: int = Field(2048, ge=1)
    #: Request body limit in bytes (413 beyond).
    max_content_length: int = Field(64 * 1024 * 1024, ge=1024)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    #: Largest encoded image accepted (any source), bytes (413 beyond).
    image_max_bytes: int = Field(20 * 1024 * 1024, ge=1)
    #: Largest image accepted, width x height, checked from the header before decoding (413 beyond).
    image_max_pixels: int = Field(40_000_000, ge=1)
    #: Total seconds to download one image URL, redirects included (422 beyond).
    image_fetch_timeout: float = Field(10.0, gt=0, le=600)
    #: Allow image URLs whose host resolves to a private, loopback, link-local or reserved address.
    image_allow_private_urls: bool = False
    #: If set, image URLs must be on one of these hosts (exact names, case-insensitive).
    image_url_allowed_hosts: tuple[str, ...] = ()
    #: Folders local image paths may be read from; empty = local paths refused (403).
    image_local_dirs: tuple[str, ...] = ()
    #: Threads that fetch and decode the images of requests concurrently (per worker).
    image_fetch_workers: int = Field(8, ge=1, le=256)
    #: Accepted API keys (`Authorization: Bearer <key>`); empty = no authentication.
    api_keys: tuple[SecretStr, ...] = ()
    #: Paths served without a key even when keys are set (`/docs` covers its assets).
    auth_public_paths: tuple[str, ...] = ("/health", "/ready", "/metrics", "/", "/docs", "/openapi.json")
    #: Requests per window per API key (per client address without auth); 0 = no limit.
    rate_limit_requests: int = Field(0, ge=0)
    #: Rate-limit window, seconds.
    rate_limit_window: int = Field(60, ge=1)
    #: Flask-Limiter storage: `memory://` (per worker) or `redis://host:port/db` (shared by workers).
    rate_limit_storage_uri: str = "memory://"
    #: Characters per text input, checked before tokenising (413 beyond).
    max_input_chars: int = Field(200_000, ge=1)
    #: Origins allowed by CORS (flask-cors); empty = CORS off.
    cors_origins: tuple[str, ...] = ()
    #: `text` or `json` (one JSON object per log line).
    log_format: Literal["text", "json"] = "text"
    #: Serve Prometheus metrics at /metrics.
    metrics: bool = True

    @field_validator(
        "devices", "image_url_allowed_hosts", "image_local_dirs", "api_keys", "auth_public_paths", "cors_origins",
        mode="before",
    )
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("image_url_allowed_hosts")
    @classmethod
    def _lower_hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(host.lower().rstrip(".") for host in value)

    @field_validator("image_local_dirs")
    @classmethod
    def _check_dirs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for folder in value:
            if not os.path.isdir(folder):
                raise ValueError(f"{folder!r} is not a directory")
        return tuple(os.path.realpath(folder) for folder in value)

    @field_validator("devices")
    @classmethod
    def _check_devices(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not is_device_name(item):
                raise ValueError(f"{item!r} is not a device; use cpu, cuda or cuda:N")
        return value

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        value = value.strip().lower()
        if value != "auto" and not is_device_name(value):
            raise ValueError(f"{value!r} is not a device; use auto, cpu, cuda or cuda:N")
        return value

    @field_validator("rate_limit_storage_uri")
    @classmethod
    def _check_storage(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://", "redis+unix://")):
            raise ValueError("use memory:// or redis://host:port/db")
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @classmethod
    def from_env(
        cls, environ: Optional[Mapping[str, str]] = None, env_file: Optional[str] = ".env"
    ) -> "Settings":
        """Read settings from `environ` (default `os.environ`) over the `.env` file.

        raises SettingsError naming the variable whose value is bad.
        """
        merged: dict[str, str] = {}
        if env_file and os.path.isfile(env_file):
            merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        merged.update(os.environ if environ is None else environ)
        return cls.from_mapping(merged)

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> "Settings":
        """Build settings from a name -> string mapping of environment variables."""
        values: dict[str, Any] = {}
        source: dict[str, str] = {}
        keys = [k for k in ((env.get(SINGLE_KEY) or "").strip(), *(env.get("API_KEYS") or "").split(",")) if k.strip()]
        if keys:
            values["api_keys"] = tuple(k.strip() for k in keys)
            source["api_keys"] = "API_KEYS"
        for name, field in ENV_FIELDS.items():
            raw = env.get(name)
            if field == "api_keys":
                continue
            if raw is not None and raw.strip() != "":
                values[field] = raw.strip()
                source[field] = name
        for name, field in SECONDS_ALIASES.items():
            raw = env.get(name)
            if raw is not None and raw.strip() != "" and field not in values:
                try:
                    values[field] = float(raw) * 1000.0
                except ValueError:
                    raise SettingsError(f"{name}={raw!r}: expected a number of seconds") from None
                source[field] = name
        try:
            return cls(**values)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else "?"
            var = source.get(field, field.upper())
            raw = "<hidden>" if var == "API_KEYS" else env.get(var, "")
            raise SettingsError(f"{var}={raw!r}: {err['msg']}") from None


def is_device_name(value: str) -> bool:
    """True for `cpu`, `cuda`, `cuda:N` (N a non-negative integer)."""
    if value in ("cpu", "cuda"):
        return True
    head, _, tail = value.partition(":")
    return head == "cuda" and tail.isdigit()
