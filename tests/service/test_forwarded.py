"""FORWARDED_ALLOW_IPS: the service takes the client address from `X-Forwarded-For` only for
requests whose socket peer is a listed proxy (werkzeug's ProxyFix, one hop), so rate limits and
the access log see the client behind a proxy, and a client talking to the service directly cannot
choose its address. End to end through nginx: tests/deploy/test_proxy.py."""

from __future__ import annotations

import logging
from typing import Optional

import pytest

from conftest import load_registry
from embedding_service.process.boot import local_app
from embedding_service.config.settings import Settings, SettingsError


@pytest.fixture(scope="module")
def engines():
    return load_registry(Settings.from_mapping({"DEVICE": "cpu", "LOG_LEVEL": "WARNING"}), warmup=False)


def limited(engines, allow: Optional[str] = None):
    """A test client whose clients get 2 requests per minute each (per client address)."""
    env = {"DEVICE": "cpu", "LOG_LEVEL": "WARNING", "RATE_LIMIT_REQUESTS": "2", "RATE_LIMIT_WINDOW": "60"}
    if allow is not None:
        env["FORWARDED_ALLOW_IPS"] = allow
    return local_app(Settings.from_mapping(env), engines=engines).test_client()


def status(client, peer: str, forwarded: Optional[str] = None) -> int:
    headers = {"X-Forwarded-For": forwarded, "X-Forwarded-Proto": "https"} if forwarded else {}
    return client.get("/v1/models", headers=headers, environ_base={"REMOTE_ADDR": peer}).status_code


def test_without_trusted_proxies_forwarded_for_is_ignored(engines):
    client = limited(engines)
    assert [status(client, "10.0.0.9", f"198.51.100.{i}") for i in range(3)] == [200, 200, 429]


def test_forwarded_for_is_used_from_a_trusted_peer_only(engines):
    client = limited(engines, "10.0.0.0/24, 127.0.0.1")
    # an untrusted peer: one budget, whatever it claims
    assert [status(client, "192.0.2.7", f"198.51.100.{i}") for i in range(3)] == [200, 200, 429]
    # the trusted proxy: one budget per forwarded client
    assert [status(client, "10.0.0.9", "198.51.100.1") for _ in range(3)] == [200, 200, 429]
    assert status(client, "10.0.0.9", "198.51.100.2") == 200
    # a client's own X-Forwarded-For comes first; the proxy appends the address it saw, the one used
    assert status(client, "10.0.0.10", "198.51.100.3, 198.51.100.1") == 429
    assert status(client, "::ffff:10.0.0.9", "198.51.100.1") == 429  # an IPv4-mapped peer is its IPv4 address


def test_any_peer_is_trusted_with_a_star_and_the_access_log_shows_the_client(engines):
    client = limited(engines, "*")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    access = logging.getLogger("embedding_service.access")
    access.addHandler(handler)
    try:
        assert [status(client, "192.0.2.7", f"198.51.100.{i}") for i in range(3)] == [200, 200, 200]
    finally:
        access.removeHandler(handler)
    assert [r.remote for r in records] == ["198.51.100.0", "198.51.100.1", "198.51.100.2"]


def test_forwarded_allow_ips_takes_what_gunicorn_takes():
    """Gunicorn reads the same variable: a value one accepts, the other accepts too."""
    from gunicorn.config import validate_string_to_addr_list

    good = "127.0.0.1, ::1,10.0.0.0/8,*"
    assert Settings.from_mapping({"FORWARDED_ALLOW_IPS": good}).forwarded_allow_ips == ("127.0.0.1", "::1", "10.0.0.0/8", "*")
    validate_string_to_addr_list(good)
    for bad in ("nginx", "10.0.0.1/8", "300.0.0.1"):
        with pytest.raises(SettingsError, match="FORWARDED_ALLOW_IPS"):
            Settings.from_mapping({"FORWARDED_ALLOW_IPS": bad})
        with pytest.raises(ValueError):
            validate_string_to_addr_list(bad)
