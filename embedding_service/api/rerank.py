"""Cohere dialect (seed 004): `POST /rerank`, `/v1/rerank`, `/v2/rerank`.

`meta.api_version.version` is "2" on `/v2/rerank` and "1" elsewhere. `return_documents` defaults
to true on seed 004's `/rerank` and to false on Cohere's `/v1/rerank` and `/v2/rerank`, as each
of those clients expects; TEI's `return_text` is the same switch.
"""

from __future__ import annotations

from flask import Blueprint

from ..errors import BadRequest
from ..ranking import rerank
from ..schemas import RerankRequest, parse
from .common import images, json_body, json_response, registry

bp = Blueprint("rerank", __name__)

ROUTES = {"/rerank": (1, True), "/v1/rerank": (1, False), "/v2/rerank": (2, False)}


def _handler(version: int, documents_by_default: bool):
    def view():
        req = parse(RerankRequest, json_body())
        if req.return_documents is not None and req.return_text is not None and req.return_documents != req.return_text:
            raise BadRequest("return_documents and return_text disagree; send one", param="return_text")
        chosen = next((v for v in (req.return_documents, req.return_text) if v is not None), documents_by_default)
        return json_response(rerank(registry(), images(), req, version, chosen))

    return view


for _path, (_version, _default) in ROUTES.items():
    bp.add_url_rule(_path, f"rerank_v{_version}{_path.replace('/', '_')}", _handler(_version, _default), methods=["POST"])
