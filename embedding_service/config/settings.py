"""Service configuration, read once at start-up.

Every setting is declared once, as a field of :class:`Settings` (pydantic-settings): its default,
its constraints and its description. Its environment variable is the field name upper-cased; a
plain alias is declared on the field. Values come from the process environment, then from a `.env`
file in the working directory (the environment wins). A bad value raises :class:`SettingsError`
naming the variable, so the service fails at start-up instead of at the first request.

README.md's Configuration table is generated from the declaration by `settings_docs.py`:
`python -m embedding_service.config.settings_docs --markdown` (a test keeps the two equal).

This module must stay light: Gunicorn's master imports it, and the master never imports torch.
"""

from __future__ import annotations

from typing import Annotated, Literal, Mapping, Optional

from pydantic import AfterValidator, AliasChoices, AliasGenerator, BeforeValidator, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from .env_source import SECONDS_ALIASES, SINGLE_KEY, EnvMapping, SettingsError, env_names, environment
from .values import (
    check_aliases,
    check_api_keys,
    check_device,
    check_devices,
    check_dirs,
    check_networks,
    check_storage_uri,
    is_device_name,
    kernels_from_bool,
    lower,
    lower_hosts,
    split_commas,
    upper,
)

__all__ = ["SECONDS_ALIASES", "SINGLE_KEY", "CommaList", "Settings", "SettingsError", "env_names", "is_device_name"]


#: A comma-separated variable (never JSON): split on commas, blanks dropped.
CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(split_commas)]


class Settings(BaseSettings):
    """Typed, immutable service settings; each field's description gives its meaning and units.

    Build them with :meth:`from_env` or :meth:`from_mapping`, which raise :class:`SettingsError`.
    `Settings(**values)` also works (values over the environment over `.env`), but raises
    pydantic's ValidationError for a bad value. A plain alias is declared as
    `validation_alias=AliasChoices("FIELD_NAME", "ALIAS", ...)`, the field's own name first.
    """

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        case_sensitive=True,
        alias_generator=AliasGenerator(validation_alias=str.upper),
        validate_by_name=True,
    )

    host: str = Field("0.0.0.0", description="listen address")
    port: int = Field(8080, ge=1, le=65535, description="listen port")
    model_name: Optional[str] = Field(None, description="a model of any kind, served first and the default of its kind")
    embedding_model: Optional[str] = Field(None, description="default text embedding model")
    rerank_model: Optional[str] = Field(None, description="default reranker (kind forced to `rerank`)")
    models: Optional[str] = Field(
        None,
        description="more models: comma-separated `[alias=]reference[;option=value...]` or a JSON list (see Models)",
    )
    model_aliases: Annotated[CommaList, AfterValidator(check_aliases)] = Field(
        (),
        description="more names for served models: comma-separated `alias=model`, e.g. "
        "`text-embedding-3-small=all-MiniLM-L6-v2` for clients with a fixed model name; each alias is listed in "
        "`/v1/models` and `/api/tags`; `model` names a model already served (its name or alias)",
    )
    model_dir: Optional[str] = Field(
        None,
        description="folder of baked models: a hub id `org/name` loads from `MODEL_DIR/org/name` when that folder "
        "exists, else from the hub cache; the model keeps its hub id as its name (images: `/app/models`)",
    )
    device: Annotated[str, AfterValidator(check_device)] = Field("auto", description="`auto` (every visible GPU, else CPU), `cpu`, `cuda`, `cuda:N`")
    devices: Annotated[CommaList, AfterValidator(check_devices)] = Field(
        (), description="comma-separated device slots for Gunicorn workers, e.g. `cuda:0,cuda:1` (overrides `DEVICE`)"
    )
    dtype: Literal["auto", "float32", "float16", "bfloat16", "bfloat16-weights"] = Field(
        "auto",
        description="`auto` (CPU: `bfloat16` where the CPU has native bf16, AMX or AVX512-BF16, else `float32`; "
        "CUDA: `float16`), `float32`, `float16`, `bfloat16` (CPU: float32 weights, matrix products in bf16 under "
        "autocast; CUDA: bf16 weights), `bfloat16-weights` (bf16 weights everywhere: faster, less exact). On the "
        "CPU a bf16 model is checked against float32 at load and falls back to float32 (logged) below a smallest "
        "cosine of 0.9999 (`bfloat16`) or 0.99 (`bfloat16-weights`)",
    )
    workers: int = Field(
        0, ge=0, le=256, description="Gunicorn workers; 0 = one per GPU, or `max(2, cores // 4)` on CPU"
    )
    threads: int = Field(32, ge=1, le=1024, description="request threads per worker (gthread)")
    timeout: int = Field(120, ge=1, description="Gunicorn worker timeout, seconds")
    graceful_timeout: int = Field(30, ge=1, description="seconds in-flight requests get after SIGTERM")
    unpadded: bool = Field(
        True,
        description="on the CPU, run BERT-family encoders (BERT, XLM-R, RoBERTa: MiniLM, bge, BGE-M3, cross-encoders) and "
        "Qwen3 (Qwen3-Embedding, Qwen3-Reranker) on the real tokens of a batch only, attention per group of similar "
        "lengths, instead of padding every input to the longest; a model's `unpadded` option overrides it",
    )
    max_batch_size: int = Field(32, ge=1, description="items per forward pass")
    max_batch_tokens: int = Field(
        16384, ge=1,
        description="tokens per forward pass at most: padded tokens (items × longest), or the real tokens of a model "
        "that runs unpadded",
    )
    target_batch_tokens: int = Field(
        2048, ge=1,
        description="tokens (counted as for `MAX_BATCH_TOKENS`) at which a batch stops growing: on the CPU larger "
        "passes ran slower per token",
    )
    max_padding: float = Field(
        1.25, ge=1.0, le=100.0,
        description="padded ÷ real tokens a padded model's batch may reach: items much shorter or longer than the "
        "request served next wait for a batch of their own length",
    )
    bulk_lane: bool = Field(
        True,
        description="run bulk requests (a `priority` above 0, or more tokens than `TARGET_BATCH_TOKENS`) on a second "
        "compute thread per worker at a lower scheduling priority, so that interactive requests never wait for "
        "their forward passes",
    )
    max_priority_wait_ms: float = Field(
        2000.0, gt=0, le=3_600_000,
        description="milliseconds a waiting request may go without a forward pass before it is served next, "
        "whatever its `priority`: no request starves",
    )
    batch_timeout_ms: float = Field(
        0.0,
        ge=0,
        le=10_000,
        description="milliseconds the batcher may wait to fill a batch (0: an idle model starts at once; "
        "the worker's other models wait meanwhile, since one thread per worker runs every forward pass); "
        "`BATCH_TIMEOUT` gives it in seconds, read only when `BATCH_TIMEOUT_MS` is unset",
    )
    cpu_share: bool = Field(
        True, description="CPU workers size torch's threads per forward pass by how many workers are busy"
    )
    cpu_kernels: Annotated[Literal["auto", "mkl", "onednn"], BeforeValidator(kernels_from_bool)] = Field(
        "auto",
        validation_alias=AliasChoices("CPU_KERNELS", "ONEDNN_LINEAR"),
        description="library for float32 linear layers on the CPU: `auto` (each model's own layer shapes timed "
        "through both at load: oneDNN where it is 1.25× faster, MKL where it is slower, in between oneDNN on AMD "
        "CPUs only), `mkl`, `onednn` (same results to float32 "
        "rounding; about 1.9× MKL's rate on AMD CPUs, slower on Intel; about 140 MB more per worker for MiniLM's "
        "compiled kernels). `ONEDNN_LINEAR` is the deprecated name: `true` = `onednn`, `false` = `mkl`",
    )
    max_queue_size: int = Field(
        8192, ge=0,
        description="items queued per model before requests get 503 + `Retry-After`; a request with more items "
        "than this can never be queued: 413 (0: no limit)"
    )
    max_concurrent_requests: int = Field(
        0, ge=0, description="inference requests in flight per worker before 503 (0: only `THREADS` limits)"
    )
    max_client_batch_size: int = Field(2048, ge=1, description="inputs or documents per request (413 beyond)")
    max_content_length: int = Field(64 * 1024 * 1024, ge=1024, description="request body limit in bytes (413 beyond)")
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(upper)] = Field(
        "INFO", description="log level: `DEBUG`, `INFO`, `WARNING`, `ERROR`, `CRITICAL`"
    )
    image_max_bytes: int = Field(20 * 1024 * 1024, ge=1, description="largest encoded image, bytes (413 beyond)")
    image_max_pixels: int = Field(
        40_000_000, ge=1, description="largest image, width × height (413 beyond, checked before decoding)"
    )
    image_fetch_timeout: float = Field(
        10.0, gt=0, le=600, description="seconds to download one image URL, redirects included (422 beyond)"
    )
    image_allow_private_urls: bool = Field(
        False, description="allow image URLs on private, loopback, link-local or reserved addresses"
    )
    image_url_allowed_hosts: Annotated[CommaList, AfterValidator(lower_hosts)] = Field(
        (), description="comma-separated hosts image URLs must be on, exact names, any case (unset: any public host)"
    )
    image_local_dirs: Annotated[CommaList, AfterValidator(check_dirs)] = Field(
        (), description="comma-separated folders local image paths may be read from (unset: local paths refused)"
    )
    image_fetch_workers: int = Field(
        8, ge=1, le=256,
        description="threads per worker fetching image URLs, and as many decoding images; one request uses at "
        "most a quarter of the fetch threads and half of the decode threads",
    )
    image_max_request_pixels: int = Field(
        100_000_000, ge=1,
        description="pixels per request, width × height summed over its images, checked before decoding (413 beyond)",
    )
    image_max_urls: int = Field(16, ge=0, description="image URLs per request (413 beyond)")
    image_fetch_deadline: float = Field(
        30.0, gt=0, le=3600, description="seconds for all of one request's image URLs together (422 beyond)"
    )
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode, BeforeValidator(split_commas), AfterValidator(check_api_keys)] = Field(
        (),
        description="comma-separated API keys (`Authorization: Bearer <key>`), `API_KEY` adds one; "
        "unset = no authentication. `key;priority=N` gives a key a queue priority (a bulk-indexing key: "
        "`priority=10`): its requests are served at that priority or a later one",
    )
    auth_public_paths: CommaList = Field(
        ("/health", "/ready", "/metrics", "/", "/docs", "/openapi.json"),
        description="comma-separated paths whose GET is served without a key (`/docs` covers its assets)",
    )
    rate_limit_requests: int = Field(
        0, ge=0, description="requests per window per API key (per client address without keys); 0 = no limit"
    )
    rate_limit_window: int = Field(60, ge=1, description="rate-limit window, seconds")
    rate_limit_on_storage_error: Literal["open", "closed"] = Field(
        "open",
        description="when the rate-limit storage is unreachable: `open` serves requests unlimited, `closed` "
        "answers 503; logged once per outage and counted in a metric",
    )
    auth_failure_limit: int = Field(
        20, ge=0,
        description="failed authentications per `RATE_LIMIT_WINDOW` per client address before 429 (0: no limit)",
    )
    rate_limit_storage_uri: Annotated[str, AfterValidator(check_storage_uri)] = Field(
        "memory://",
        description="`memory://` (per worker) or `redis://host:port/db` (one limit across workers and replicas)",
    )
    max_input_chars: int = Field(
        200_000, ge=1,
        description="characters per text input as the model sees it (prompt or instruction included), checked "
        "before tokenising (413 beyond)",
    )
    max_request_chars: int = Field(
        2_000_000, ge=1,
        description="characters per request as the models see them, summed over inputs (prompt, instruction and, "
        "for reranking, the query repeated per document included), checked before tokenising (413 beyond)",
    )
    max_rerank_chunks: int = Field(
        4096, ge=1, description="document chunks per rerank request with `max_chunks_per_doc` (413 beyond)"
    )
    vector_cache: Literal["off", "local", "redis"] = Field(
        "off", description="keep each text's pooled vector by everything that changes it: `local` (an LRU per "
        "worker), `redis` (shared through RATE_LIMIT_STORAGE_URI's Redis); a request's `Cache-Control: no-store` "
        "bypasses it",
    )
    vector_cache_bytes: int = Field(
        256 * 1024 * 1024, ge=1, description="bytes a `local` vector cache holds per worker (vectors, keys and "
        "entry overhead), least recently used out first",
    )
    vector_cache_ttl: int = Field(86400, ge=1, description="seconds a `redis` vector cache keeps an entry")
    chunked_embeddings: bool = Field(
        False, description="embed a text longer than the model's window in overlapping windows pooled into one "
        "vector (token-weighted mean), for requests that do not say (`chunked` on `/v1/embeddings` and TEI's `/embed`)",
    )
    max_embed_chunks: int = Field(
        4096, ge=1, description="windows per chunked embedding request, counted after tokenising and before any "
        "forward pass (413 beyond)",
    )
    max_embed_all_tokens: int = Field(
        16384, ge=1,
        description="token vectors per `/embed_all` request, bounded before tokenising (a text's UTF-8 bytes plus 4, "
        "at most the model's window with `truncate`) and counted after (413 beyond)",
    )
    max_sparse_entries: int = Field(
        4_194_304, ge=1,
        description="sparse-vector entries per `/embed_sparse` or `/v1/sparse_embeddings` request, bounded before "
        "tokenising (a SPLADE input may fill its vocabulary; a BGE-M3 input gives at most one per token) (413 beyond)",
    )
    max_token_vector_values: int = Field(
        16_777_216, ge=1,
        description="token-vector values (vectors x dimension) per `/pooling` `token_embed` request, bounded before "
        "tokenising (a text's UTF-8 bytes plus 4 vectors, a PyLate query its query length) (413 beyond)",
    )
    max_response_tokens: int = Field(
        262_144, ge=1,
        description="tokens per `/tokenize` or `/decode` request, bounded before tokenising (a text's UTF-8 bytes "
        "plus 4 per input; an id sent is one token) (413 beyond)",
    )
    cors_origins: CommaList = Field((), description="comma-separated origins allowed by CORS; unset = CORS off")
    forwarded_allow_ips: Annotated[CommaList, AfterValidator(check_networks)] = Field(
        (),
        description="comma-separated addresses or networks of reverse proxies whose `X-Forwarded-For` and "
        "`X-Forwarded-Proto` are trusted, so rate limits and logs see the client's address (Gunicorn reads the "
        "same variable); `*` trusts any peer; unset = trust none",
    )
    log_format: Annotated[Literal["text", "json"], BeforeValidator(lower)] = Field(
        "text", description="`text` or `json` (one JSON object per line, Gunicorn's own logs too)"
    )
    metrics: bool = Field(True, description="serve Prometheus metrics at `/metrics`")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """`Settings(**values)`: the values, over the environment, over `.env` (as :meth:`from_env`)."""
        return init_settings, EnvMapping(settings_cls, environment(None, ".env"))

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None, env_file: Optional[str] = ".env") -> "Settings":
        """Read settings from `environ` (default `os.environ`) over the `env_file` (skipped when
        None or missing).

        raises SettingsError naming the variable whose value is bad.
        """
        return cls.from_mapping(environment(environ, env_file))

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> "Settings":
        """Build settings from a name -> string mapping of environment variables, and nothing else
        (never `os.environ` nor `.env`). Values are stripped; blank ones count as unset.

        raises SettingsError naming the variable whose value is bad.
        """
        source = EnvMapping(cls, env)
        try:  # `_build_sources`: pydantic-settings' argument for sources built by the caller
            return cls(_build_sources=((source,), {}))
        except ValidationError as exc:
            raise source.error(exc) from None
