"""The SigLIP service's API: `POST /embed_text` (texts) and its side of `POST /embed` (`images`,
or a multipart upload of image files; the path is shared with TEI's `inputs`:
`http/shared_paths.py`). Both answer a bare `[[float, ...], ...]` list, one row per input."""

from __future__ import annotations

from flask import request

from ....domain.errors import InvalidInput
from ...responses import VECTORS
from ...schemas import parse
from .schemas import EmbedTextRequest, ImageEmbedRequest
from ....operations.embed import embed_images, embed_text
from ...json_io import engines, images, json_body, json_response, budgets, state
from ...budgets import ITEMS, BodyLimit, Budget
from ...routing import EMBED_ERRORS, TEXT_LIMITS, ApiBlueprint

bp = ApiBlueprint("native", __name__, tag="SigLIP service")

MULTIPART_FIELDS = {"model", "normalize"}


@bp.operation(
    "POST", "/embed_text", summary="Text embeddings (SigLIP service): texts or text -> [[float]]",
    request=EmbedTextRequest, response=VECTORS, errors=EMBED_ERRORS, limits=TEXT_LIMITS,
    default_model="first", budget=Budget(BodyLimit.TEXT, "text", {"texts": ITEMS}),
)
def embed_text_route():
    """`{"texts": [str]}` or `{"text": str}` -> `[[float]]`, one row per text."""
    req = parse(EmbedTextRequest, json_body())
    # MODEL_NAME's text tower by default (prefer_first), so text and image vectors share a space.
    result = embed_text(engines(), budgets(), model_name=req.model, texts=req.items(), normalize=req.normalize,
                        param="texts" if req.texts is not None else "text", prefer_first=True)
    return json_response(result.vectors)


def embed_image_body(body: dict):
    """The SigLIP service's `/embed` JSON body, `{"images": [...]}` -> `[[float]]`, one row per image."""
    req = parse(ImageEmbedRequest, body)
    result = embed_images(engines(), budgets(), images(), model_name=req.model, sources=req.images, normalize=req.normalize)
    return json_response(result.vectors)


def embed_uploads():
    """`multipart/form-data`: every file part is an image, in order; optional form fields
    `model` and `normalize` (`true`/`false`)."""
    unknown = sorted(str(name) if name is not None else "" for name in set(request.form) - MULTIPART_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown form field {unknown[0]!r}; allowed: model, normalize, and files", param=unknown[0])
    normalize_text = request.form.get("normalize", "true").strip().lower()
    if normalize_text not in ("true", "false", "1", "0"):
        raise InvalidInput("normalize must be true or false", param="normalize")
    limit = state().settings.image_max_bytes
    uploads = [part.stream.read(limit + 1) for key in request.files for part in request.files.getlist(key)]
    if not uploads:
        raise InvalidInput("the multipart upload has no image files", param="images")
    result = embed_images(
        engines(),
        budgets(),
        images(),
        model_name=request.form.get("model") or None,
        sources=uploads,
        normalize=normalize_text in ("true", "1"),
    )
    return json_response(result.vectors)
