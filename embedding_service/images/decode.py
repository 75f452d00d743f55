"""Decoding untrusted image bytes with Pillow: a format allow-list, a pixel cap checked from the
header before any pixel is decoded, EXIF orientation, and conversion of every mode to RGB."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import PayloadTooLarge, Unprocessable, UnsupportedMediaType

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
#: Leading bytes of common non-image or not-allowed uploads, to name them in the 415.
KNOWN_OTHERS = {
    b"%PDF": "a PDF document",
    b"<svg": "an SVG image",
    b"<?xml": "an XML/SVG document",
    b"II*\x00": "a TIFF image",
    b"MM\x00*": "a TIFF image",
    b"\x00\x00\x00\x0cjP": "a JPEG 2000 image",
}
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")

# Our own cap (IMAGE_MAX_PIXELS, checked from the header in decode_image before any pixel is
# decoded) replaces Pillow's global one, so an oversized image gets a 413 that names its size.
Image.MAX_IMAGE_PIXELS = None


def has_signature(data: bytes) -> bool:
    """True when `data` starts like an image or a document format we can name."""
    if data.startswith(IMAGE_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return True
    return any(data.lstrip()[:8].startswith(magic) for magic in KNOWN_OTHERS)


def _describe(data: bytes) -> str:
    head = data[:64].lstrip()
    for magic, name in KNOWN_OTHERS.items():
        if head.startswith(magic):
            return name
    if b"<svg" in data[:1024]:
        return "an SVG image"
    return "not a recognised image"


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB. 16-bit and float greyscale are scaled to 8 bits; transparency is
    composited onto white (as transformers' `convert_to_rgb`); CMYK, palette, greyscale and
    1-bit convert directly."""
    if image.mode in SIXTEEN_BIT_MODES or image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        scale = 257.0 if image.mode != "F" or array.max(initial=0) > 255 else 1.0
        image = Image.fromarray(np.clip(np.round(array / scale), 0, 255).astype(np.uint8), "L")
    if image.mode == "RGB":
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """Bytes -> RGB PIL image, upright.

    raises UnsupportedMediaType (415) for anything but JPEG, PNG, WEBP, GIF (first frame) or BMP;
    PayloadTooLarge (413) when width x height exceeds `max_pixels` (read from the header, before
    decoding); Unprocessable (422) for truncated or corrupt data.
    """
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError:
        raise PayloadTooLarge(f"image has more pixels than IMAGE_MAX_PIXELS ({max_pixels})") from None
    except UnidentifiedImageError:
        raise UnsupportedMediaType(
            f"unsupported image format ({_describe(data)}); send JPEG, PNG, WEBP, GIF or BMP"
        ) from None
    except Exception:
        raise Unprocessable("the image could not be decoded (corrupt header)") from None
    width, height = image.size
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"image is {width}x{height} = {width * height} pixels; at most {max_pixels} (IMAGE_MAX_PIXELS)"
        )
    if width == 0 or height == 0:
        raise Unprocessable("the image has no pixels")
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
        return to_rgb(image)
    except Image.DecompressionBombError:
        raise PayloadTooLarge(f"image has more pixels than IMAGE_MAX_PIXELS ({max_pixels})") from None
    except Exception:
        raise Unprocessable("the image could not be decoded (truncated or corrupt data)") from None
