"""API keys, rate limits and CORS (the 401 and 429 rows of the error table in errors.py).

- API keys: `Authorization: Bearer <key>` checked against every configured key with
  `hmac.compare_digest` (constant time); 401 with `WWW-Authenticate: Bearer`. Paths in
  AUTH_PUBLIC_PATHS (and /docs assets) and CORS preflights need no key.
- Rate limits: Flask-Limiter, RATE_LIMIT_REQUESTS per RATE_LIMIT_WINDOW seconds per API key (per
  client address without auth), fixed window, storage RATE_LIMIT_STORAGE_URI (`redis://` makes the
  limit hold across Gunicorn workers); 429 with `Retry-After` and `X-RateLimit-*`.
- CORS: flask-cors for the origins in CORS_ORIGINS only; off when empty.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from flask import Flask, g, request

from .errors import Unauthorized
from .settings import Settings

log = logging.getLogger("embedding_service.security")
CHALLENGE = 'Bearer realm="embedding_service"'


def install_security(app: Flask, settings: Settings) -> None:
    """Register auth, then the rate limiter, then CORS, in that order (auth decides the limit key)."""
    keys = [key.get_secret_value().encode() for key in settings.api_keys]
    public = set(settings.auth_public_paths)

    def is_public() -> bool:
        path = request.path.rstrip("/") or "/"
        return path in public or ("/docs" in public and path.startswith("/docs/"))

    @app.before_request
    def _authenticate() -> None:
        if not keys or request.method == "OPTIONS" or is_public():
            return
        header = request.headers.get("Authorization", "")
        if not header:
            raise Unauthorized("missing API key: send the header Authorization: Bearer <key>", headers={"WWW-Authenticate": CHALLENGE})
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(
                "malformed Authorization header; expected: Bearer <key>",
                headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_request"'},
            )
        candidate = token.encode()
        matched = False
        for key in keys:  # compare with every key, so timing says nothing about which one matched
            matched |= hmac.compare_digest(key, candidate)
        if not matched:
            raise Unauthorized("invalid API key", headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'})
        g.client_key = "key:" + hashlib.sha256(candidate).hexdigest()[:16]

    if settings.rate_limit_requests:
        from flask_limiter import Limiter

        Limiter(
            key_func=lambda: getattr(g, "client_key", None) or f"ip:{request.remote_addr}",
            app=app,
            default_limits=[f"{settings.rate_limit_requests} per {settings.rate_limit_window} second"],
            default_limits_exempt_when=lambda: request.method == "OPTIONS" or is_public(),
            storage_uri=settings.rate_limit_storage_uri,
            strategy="fixed-window",
            headers_enabled=True,
            swallow_errors=True,  # storage down: serve and log rather than fail every request
            key_prefix="embedding_service",
        )

    if settings.cors_origins:
        from flask_cors import CORS

        CORS(
            app,
            origins=list(settings.cors_origins),
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=[
                "X-Request-ID", "X-Total-Time", "X-Tokenization-Time", "X-Queue-Time", "X-Inference-Time",
                "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
            ],
            max_age=600,
        )
