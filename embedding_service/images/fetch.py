"""Downloading image URLs without becoming an SSRF proxy.

- http and https only; at most MAX_REDIRECTS redirects, every hop checked again.
- The host is resolved once per hop; if any address is private, loopback, link-local, multicast,
  reserved or otherwise not global, the URL is refused (403) before any connection, unless
  IMAGE_ALLOW_PRIVATE_URLS. The connection then goes to the checked address (TLS still verifies
  the host name), so a DNS answer cannot change between the check and the connection.
- One total deadline (IMAGE_FETCH_TIMEOUT) covers resolution, connection, redirects and body, and
  the request's own deadline for all its URLs (IMAGE_FETCH_DEADLINE, passed in by the loader) cuts
  it shorter; the body is streamed with a byte cap (IMAGE_MAX_BYTES) that holds whatever
  Content-Length says, and a cancelled fetch (another image of its request failed) stops at its
  next chunk.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from typing import Optional
from urllib.parse import urljoin, urlsplit

import urllib3

from .. import __version__
from ..domain.errors import InvalidInput, NotAllowed, LimitExceeded, Unprocessable
from ..config.settings import Settings

MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
CHUNK = 64 * 1024


def is_public(address: str) -> bool:
    """True when `address` is a global unicast address (IPv4-mapped IPv6 judged as IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


class UrlFetcher:
    """Fetches image bytes from http(s) URLs under the settings' safety rules."""

    def __init__(self, settings: Settings):
        self.timeout = settings.image_fetch_timeout
        self.max_bytes = settings.image_max_bytes
        self.allow_private = settings.image_allow_private_urls
        self.allowed_hosts = set(settings.image_url_allowed_hosts)

    def fetch(
        self, url: str, deadline: Optional[float] = None, cancelled: Optional[threading.Event] = None,
        deadline_message: str = "",
    ) -> bytes:
        """The body of `url`, within IMAGE_FETCH_TIMEOUT and by `deadline` (time.monotonic(), the
        request's IMAGE_FETCH_DEADLINE, named by `deadline_message`), whichever comes first;
        abandoned at the next chunk once `cancelled` is set.

        raises InvalidInput (400) for a scheme other than http(s) or a malformed URL; NotAllowed (403)
        for a host that is not allowed or resolves to a non-public address; LimitExceeded (413)
        past IMAGE_MAX_BYTES; Unprocessable (422) for a failed, non-200, too-slow or cancelled
        download.
        """
        own = time.monotonic() + self.timeout
        late = f"the image URL did not download within {self.timeout:g}s (IMAGE_FETCH_TIMEOUT)"
        limit = _Limit(own, late, cancelled)
        if deadline is not None and deadline < own:
            limit = _Limit(deadline, deadline_message or late, cancelled)
        for _ in range(MAX_REDIRECTS + 1):
            limit.check()
            scheme, host, port, target = self._check_url(url)
            address = self._resolve(host, port, limit)
            response = self._open(scheme, address, host, port, target, limit)
            try:
                if response.status in REDIRECTS and response.headers.get("Location"):
                    url = urljoin(url, response.headers["Location"])
                    continue
                if response.status != 200:
                    raise Unprocessable(f"the image URL answered HTTP {response.status}")
                return self._read(response, limit)
            finally:
                response.release_conn()
                response.close()
        raise Unprocessable(f"the image URL redirected more than {MAX_REDIRECTS} times")

    def _check_url(self, url: str) -> tuple[str, str, int, str]:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise InvalidInput("malformed image URL") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise InvalidInput(f"URL scheme {scheme}:// is not allowed for images; use http or https")
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            raise InvalidInput("the image URL has no host")
        if self.allowed_hosts and host not in self.allowed_hosts:
            raise NotAllowed(f"image host {host!r} is not in IMAGE_URL_ALLOWED_HOSTS")
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        return scheme, host, port or (443 if scheme == "https" else 80), target

    def _resolve(self, host: str, port: int, limit: "_Limit") -> str:
        limit.check()
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise Unprocessable(f"the image host {host!r} could not be resolved") from None
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        if not self.allow_private:
            for address in addresses:
                if not is_public(address):
                    raise NotAllowed(
                        f"image host {host!r} resolves to a private, loopback, link-local or reserved "
                        "address; set IMAGE_ALLOW_PRIVATE_URLS=true to allow it"
                    )
        return addresses[0]

    def _open(self, scheme: str, address: str, host: str, port: int, target: str, limit: "_Limit"):
        remaining = max(0.05, limit.remaining())
        timeout = urllib3.Timeout(connect=remaining, read=remaining)
        literal = f"[{address}]" if ":" in address else address
        if scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                literal.strip("[]"), port, timeout=timeout, retries=False, maxsize=1,
                server_hostname=host, assert_hostname=host, cert_reqs="CERT_REQUIRED",
            )
        else:
            pool = urllib3.HTTPConnectionPool(literal.strip("[]"), port, timeout=timeout, retries=False, maxsize=1)
        default_port = 443 if scheme == "https" else 80
        host_header = host if port == default_port else f"{host}:{port}"
        headers = {
            "Host": host_header,
            "User-Agent": f"embedding_service/{__version__}",
            "Accept": "image/*",
            "Accept-Encoding": "identity",
        }
        try:
            return pool.urlopen(
                "GET", target, headers=headers, redirect=False, retries=False, preload_content=False,
                decode_content=False, timeout=timeout,
            )
        except urllib3.exceptions.TimeoutError:
            raise Unprocessable(limit.message) from None
        except urllib3.exceptions.HTTPError:
            limit.check()
            raise Unprocessable("the image URL could not be fetched (connection failed)") from None

    def _read(self, response, limit: "_Limit") -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise LimitExceeded(f"the image is {declared} bytes; at most {self.max_bytes} (IMAGE_MAX_BYTES)")
        body = bytearray()
        while True:
            limit.check()
            remaining = max(0.01, limit.remaining())
            sock = getattr(getattr(response, "connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(remaining)
            try:
                chunk = response.read1(CHUNK)
            except (urllib3.exceptions.TimeoutError, socket.timeout, TimeoutError):
                raise Unprocessable(limit.message) from None
            except (urllib3.exceptions.HTTPError, OSError):
                raise Unprocessable("the image download was cut off") from None
            if not chunk:
                return bytes(body)
            body += chunk
            if len(body) > self.max_bytes:
                raise LimitExceeded(f"the image is larger than {self.max_bytes} bytes (IMAGE_MAX_BYTES)")


class _Limit:
    """One fetch's deadline (time.monotonic()), the message naming it, and its request's
    cancellation event."""

    def __init__(self, deadline: float, message: str, cancelled: Optional[threading.Event]):
        self.deadline, self.message, self.cancelled = deadline, message, cancelled

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def check(self) -> None:
        """raises Unprocessable (422) when the deadline has passed or the fetch was cancelled."""
        if self.cancelled is not None and self.cancelled.is_set():
            raise Unprocessable("the image download was cancelled (another image of the request failed)")
        if self.remaining() <= 0:
            raise Unprocessable(self.message)
