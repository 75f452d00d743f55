"""`GET /openapi.json` (generated, http/openapi/) and `GET /docs` (Swagger UI 5, which reads
OpenAPI 3.1, from the local files of the PyPI package flask-swagger-ui; no CDN)."""

from __future__ import annotations

import os

from flask import Response, send_from_directory

from ....inference.engine import Capability
from ....domain.errors import NotFound
from ...openapi import LIMIT_TEXT, Deployment, ServedModel, build_spec
from ....operations.rerank import choose_engine
from ....operations.retrieval import pooling_engine
from ....operations.tokens import token_engine
from ...json_io import json_response, state
from ...routing import ApiBlueprint

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


def current_deployment() -> Deployment:
    """This deployment's limits for the description: settings, and the served models once loaded."""
    st = state()
    s = st.settings
    limits = Deployment(
        model_names=[""] + st.model_names,
        text_model_names=[""] + st.model_names,
        max_items=s.max_client_batch_size,
        max_chars=s.max_input_chars,
        budgets={name: getattr(s, name.lower()) for name in LIMIT_TEXT if hasattr(s, name.lower())},
        auth=bool(s.api_keys),
        # 429: the rate limit, or too many failed authentications from one address.
        rate_limited=bool(s.rate_limit_requests) or (bool(s.api_keys) and getattr(s, "auth_failure_limit", 0) > 0),
        public_paths=list(s.auth_public_paths),
    )
    if st.engines is not None:
        reg = st.engines
        limits.served = [_served(e) for e in reg.engines]
        if reg.has(Capability.EMBED_TEXT):
            limits.defaults["text"] = reg.default(Capability.EMBED_TEXT).name
            limits.defaults["first"] = reg.get(None, Capability.EMBED_TEXT, prefer_first=True).name
        if reg.has(Capability.EMBED_IMAGES):
            limits.defaults["images"] = reg.default(Capability.EMBED_IMAGES).name
        if reg.has(Capability.SCORE_PAIRS) or reg.has(Capability.EMBED_TEXT):
            limits.defaults["all"] = choose_engine(reg, None).name
        if reg.has(Capability.TOKEN_STATES):
            limits.defaults["tokens"] = token_engine(reg, None).name
        if reg.has(Capability.SPARSE):
            limits.defaults["sparse"] = reg.default(Capability.SPARSE).name
        if reg.has(Capability.EMBED_TEXT) or reg.has(Capability.MULTI_VECTOR) or reg.has(Capability.CLASSIFY):
            limits.defaults["pooling"] = pooling_engine(reg, None).name
        if reg.has(Capability.CLASSIFY):
            limits.defaults["classifier"] = reg.default(Capability.CLASSIFY).name
        if reg.has(Capability.TOKEN_CLASSIFY):
            limits.defaults["token-classifier"] = reg.default(Capability.TOKEN_CLASSIFY).name
    return limits


def _served(engine) -> ServedModel:
    text, pairs = engine.can(Capability.EMBED_TEXT), engine.can(Capability.SCORE_PAIRS)
    return ServedModel(
        labels=[engine.name, *engine.aliases],
        text=text,
        images=engine.can(Capability.EMBED_IMAGES),
        pairs=pairs,
        dimension=getattr(engine.model, "dimension", None) if not (
            pairs or engine.can(Capability.CLASSIFY) or engine.can(Capability.TOKEN_CLASSIFY)) else None,
        max_token_id=(getattr(engine.model, "vocab_rows", 0) or None) and engine.model.vocab_rows - 1,
        prompt_names=sorted(getattr(engine.model, "prompts", None) or {}),
        instruction=engine.model.takes_instruction,
        token_embeddings=engine.can(Capability.TOKEN_STATES),
        sparse=engine.can(Capability.SPARSE),
        multi_vector=engine.can(Capability.MULTI_VECTOR),
        classifier=engine.can(Capability.CLASSIFY),
        token_classifier=engine.can(Capability.TOKEN_CLASSIFY),
    )


@bp.operation("GET", "/openapi.json", summary="This description", response={"type": "object"}, public=True)
def openapi():
    """The OpenAPI 3.1 description of every documented route, with this deployment's limits."""
    return json_response(build_spec(current_deployment()))


@bp.operation("GET", "/docs", summary="Swagger UI", media_type="text/html", public=True)
def docs():
    """Swagger UI."""
    return Response(PAGE, mimetype="text/html")


@bp.get("/docs/<path:name>")  # Swagger UI's own files: served, not documented
def docs_asset(name: str):
    """One of Swagger UI's files (ASSETS); raises NotFound (404) for any other name."""
    if name not in ASSETS:
        raise NotFound(f"no route GET /docs/{name}; GET / lists the routes")
    import flask_swagger_ui  # Swagger UI's distribution files ship in its dist/ folder

    return send_from_directory(os.path.join(os.path.dirname(os.path.abspath(flask_swagger_ui.__file__)), "dist"), name,
                               max_age=3600)
