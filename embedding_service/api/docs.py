"""`GET /openapi.json` (generated, openapi.py) and `GET /docs` (Swagger UI from the local files of
the PyPI package swagger-ui-bundle; no CDN)."""

from __future__ import annotations

import os

from flask import Response, send_from_directory

from ..engine import Capability
from ..errors import NotFound
from ..openapi import Limits, build_spec
from .common import json_response, state
from .routing import ApiBlueprint

bp = ApiBlueprint("docs", __name__, tag="operations")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>embedding_service API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-ui-standalone-preset.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: "StandaloneLayout"});</script>
</body></html>"""
ASSETS = {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "favicon-32x32.png", "favicon-16x16.png"}


def current_limits() -> Limits:
    st = state()
    s = st.settings
    limits = Limits(
        model_names=[""] + st.model_names,
        text_model_names=[""] + st.model_names,
        max_items=s.max_client_batch_size,
        max_chars=s.max_input_chars,
        auth=bool(s.api_keys),
        rate_limited=bool(s.rate_limit_requests),
    )
    if st.engines is not None:
        served = st.engines.engines
        labels = lambda es: [""] + [label for e in es for label in (e.name, *e.aliases)]  # noqa: E731
        text = [e for e in served if e.can(Capability.EMBED_TEXT)]
        limits.model_names = labels(served)
        limits.text_model_names = labels(text)
        if text:
            limits.max_dimensions = min(e.model.dimension for e in text)
            limits.max_token_id = min(e.text.vocab_rows for e in text) - 1
    return limits


@bp.operation("GET", "/openapi.json", summary="This description", response={"type": "object"}, public=True)
def openapi():
    """The OpenAPI 3.1 description of every documented route, with this deployment's limits."""
    return json_response(build_spec(current_limits()))


@bp.operation("GET", "/docs", summary="Swagger UI", media_type="text/html", public=True)
def docs():
    """Swagger UI."""
    return Response(PAGE, mimetype="text/html")


@bp.get("/docs/<path:name>")  # Swagger UI's own files: served, not documented
def docs_asset(name: str):
    """One of Swagger UI's files (ASSETS); raises NotFound (404) for any other name."""
    if name not in ASSETS:
        raise NotFound(f"no route GET /docs/{name}; GET / lists the routes")
    import swagger_ui_bundle

    return send_from_directory(os.path.abspath(swagger_ui_bundle.swagger_ui_path), name, max_age=3600)
