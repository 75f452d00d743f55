"""The vector cache, on request (VECTOR_CACHE): a text's pooled vector kept by everything that
changes it, so a repeated query costs no forward pass.

The key is the model's name and precision, the prompt or instruction prefix put before the text,
the truncation (`truncate` and its side) and the text, hashed (SHA-256). What follows pooling
(`dimensions`, L2 normalisation) is applied to the cached vector as to a fresh one, so it is not
part of the key. A cached entry is the pooled float32 vector and the tokens the text was fed as
(for `usage`): a hit answers exactly what the miss that stored it answered.

- `local`: an LRU per worker holding at most VECTOR_CACHE_BYTES (vectors, keys and a fixed
  overhead per entry counted);
- `redis`: shared by every worker and replica through the rate limits' Redis
  (RATE_LIMIT_STORAGE_URI), entries expiring after VECTOR_CACHE_TTL seconds. A Redis that fails
  is skipped (the request is computed), counted as an error, never a failed request.

A request with `Cache-Control: no-store` neither reads nor writes it; `no-cache` computes afresh
and stores the result (:data:`cache_mode`).
"""

from __future__ import annotations

import contextvars
from abc import ABC, abstractmethod
import hashlib
import logging
import struct
import threading
from collections import OrderedDict
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..config.env_source import SettingsError

log = logging.getLogger("embedding_service.vector_cache")

#: This request's use of the cache: "use" (read and write), "refresh" (`no-cache`: write only) or
#: "bypass" (`no-store`); the HTTP edge sets it from `Cache-Control`.
cache_mode: contextvars.ContextVar[str] = contextvars.ContextVar("cache_mode", default="use")

#: Bytes counted per local entry besides its vector and key (the dict slot, the objects).
ENTRY_OVERHEAD = 200

#: One cached entry: (pooled float32 vector, tokens fed).
Entry = tuple[np.ndarray, int]


def cache_key(model: str, precision: str, prefix: str, truncate: bool, direction: str, text: str) -> bytes:
    """The SHA-256 of everything that changes a text's pooled vector (the module docstring)."""
    digest = hashlib.sha256()
    for part in (model, precision, prefix, "1" if truncate else "0", direction, text):
        encoded = part.encode("utf-8", "surrogatepass")
        digest.update(struct.pack("<Q", len(encoded)))
        digest.update(encoded)
    return digest.digest()


class VectorCache(ABC):
    """The interface: `get_many(keys)` (an Entry or None per key), `put_many(pairs)`, and the
    counters `hits`, `misses`, `errors` and `bytes` (what a local cache holds). Implemented by
    :class:`LocalVectorCache` and :class:`RedisVectorCache`."""

    kind = "off"

    def __init__(self, observer: Optional[Any] = None):
        self.hits = self.misses = self.errors = 0
        self.observer = observer

    @property
    def bytes(self) -> int:
        return 0

    @abstractmethod
    def get_many(self, keys: Sequence[bytes]) -> list[Optional[Entry]]:
        """One Entry (a copy to keep) or None per key, in order."""

    @abstractmethod
    def put_many(self, pairs: Sequence[tuple[bytes, Entry]]) -> None:
        """Store each (key, Entry); a store that fails is skipped, never raised."""

    def count(self, model: str, hits: int, misses: int) -> None:
        self.hits += hits
        self.misses += misses
        if self.observer is not None:
            self.observer.cache(model, hits, misses, self.bytes)


class LocalVectorCache(VectorCache):
    """An LRU per worker within `budget` bytes (thread-safe)."""

    kind = "local"

    def __init__(self, budget: int, observer: Optional[Any] = None):
        super().__init__(observer)
        self.budget = budget
        self._entries: OrderedDict[bytes, Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def bytes(self) -> int:
        return self._bytes

    @staticmethod
    def size(key: bytes, entry: Entry) -> int:
        return len(key) + entry[0].nbytes + ENTRY_OVERHEAD

    def get_many(self, keys: Sequence[bytes]) -> list[Optional[Entry]]:
        found = []
        with self._lock:
            for key in keys:
                entry = self._entries.get(key)
                if entry is not None:
                    self._entries.move_to_end(key)
                found.append(entry)
        return found

    def put_many(self, pairs: Sequence[tuple[bytes, Entry]]) -> None:
        with self._lock:
            for key, entry in pairs:
                size = self.size(key, entry)
                if size > self.budget:
                    continue
                old = self._entries.pop(key, None)
                if old is not None:
                    self._bytes -= self.size(key, old)
                self._entries[key] = entry
                self._bytes += size
                while self._bytes > self.budget:
                    evicted_key, evicted = self._entries.popitem(last=False)
                    self._bytes -= self.size(evicted_key, evicted)


class RedisVectorCache(VectorCache):
    """Entries in Redis under `es:vec:<hex key>`: the tokens (4 bytes, little-endian) then the
    float32 vector, expiring after `ttl` seconds. A Redis error skips the cache for that call."""

    kind = "redis"

    def __init__(self, uri: str, ttl: int, observer: Optional[Any] = None, client: Any = None):
        super().__init__(observer)
        if client is None:
            import redis

            client = redis.Redis.from_url(uri, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.client = client
        self.ttl = ttl

    @staticmethod
    def name(key: bytes) -> str:
        return "es:vec:" + key.hex()

    def get_many(self, keys: Sequence[bytes]) -> list[Optional[Entry]]:
        try:
            values = self.client.mget([self.name(key) for key in keys])
        except Exception as exc:  # noqa: BLE001 - any Redis failure: compute instead
            self._failed("read", exc)
            return [None] * len(keys)
        return [None if value is None else (np.frombuffer(value[4:], dtype="<f4").copy(), struct.unpack("<I", value[:4])[0])
                for value in values]

    def put_many(self, pairs: Sequence[tuple[bytes, Entry]]) -> None:
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for key, (vector, tokens) in pairs:
                    pipe.set(self.name(key), struct.pack("<I", tokens) + np.asarray(vector, dtype="<f4").tobytes(), ex=self.ttl)
                pipe.execute()
        except Exception as exc:  # noqa: BLE001
            self._failed("write", exc)

    def _failed(self, what: str, exc: Exception) -> None:
        self.errors += 1
        if self.observer is not None:
            self.observer.cache_error()
        log.warning("vector cache: Redis %s failed (%s); computing instead", what, type(exc).__name__)


def through_cache(cache: VectorCache, model: str, keys: Sequence[bytes],
                  compute: Callable[[list[int]], list[Entry]]) -> list[Entry]:
    """One Entry per key: the cached ones (unless this request's :data:`cache_mode` is
    "refresh"), the others from `compute(indices of the missing keys)`, then stored. Counts the
    hits and misses for `model`."""
    found = cache.get_many(keys) if cache_mode.get() == "use" else [None] * len(keys)
    missing = [i for i, entry in enumerate(found) if entry is None]
    if missing:
        fresh = [(np.asarray(vector, dtype=np.float32), int(tokens)) for vector, tokens in compute(missing)]
        cache.put_many([(keys[i], entry) for i, entry in zip(missing, fresh)])
        for i, entry in zip(missing, fresh):
            found[i] = entry
    cache.count(model, len(keys) - len(missing), len(missing))
    return found  # type: ignore[return-value]


def build_vector_cache(settings: Any, observer: Optional[Any] = None) -> Optional[VectorCache]:
    """The cache VECTOR_CACHE asks for, or None (`off`). raises SettingsError for `redis` without
    a Redis RATE_LIMIT_STORAGE_URI."""
    if settings.vector_cache == "local":
        return LocalVectorCache(settings.vector_cache_bytes, observer)
    if settings.vector_cache == "redis":
        uri = settings.rate_limit_storage_uri
        if not uri.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(f"VECTOR_CACHE=redis shares the rate limits' Redis: set RATE_LIMIT_STORAGE_URI to a "
                                f"redis:// URI (it is {uri.split('://')[0]}://)")
        return RedisVectorCache(uri, settings.vector_cache_ttl, observer)
    return None
