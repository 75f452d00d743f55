"""The SigLIP service's request schemas: `POST /embed_text` and `/embed` with `images`."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import ConfigDict, Field, StrictBool, StrictStr

from ....domain.errors import InvalidInput
from ...schemas import IMAGES, NEEDS_IMAGE_MODEL, NonEmptyList, NonEmptyStr, Strict, text_list_check, exactly_one, strict_with


class ImageEmbedRequest(Strict):
    """`POST /embed` with `images` (as the SigLIP service): data URIs, base64, URLs or allowed
    local paths."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={NEEDS_IMAGE_MODEL: True})

    images: Annotated[NonEmptyList, Field(description=IMAGES)]
    model: Optional[StrictStr] = None
    normalize: StrictBool = True


class EmbedTextRequest(Strict):
    """`POST /embed_text` (as the SigLIP service): `texts` or `text`."""

    model_config = strict_with(exactly_one("texts", "text"))

    # Not Optional: omitted is fine, null is not (the schema says so too).
    texts: NonEmptyList = None  # type: ignore[assignment]
    text: NonEmptyStr = None  # type: ignore[assignment]
    model: Optional[StrictStr] = None
    normalize: StrictBool = True

    _texts = text_list_check("texts", "text")

    def items(self) -> list[str]:
        if (self.texts is None) == (self.text is None):
            raise InvalidInput('send exactly one of "texts" (a list of strings) or "text" (a string)', param="texts")
        return self.texts if self.texts is not None else [self.text]
