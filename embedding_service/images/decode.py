"""Decoding untrusted image bytes with Pillow: a format allow-list, a pixel cap checked from the
header before any pixel is decoded, EXIF orientation, conversion of every mode to 8-bit RGB, and
shrinking toward the model's input size as the image is decoded.

Memory: a large image exists at full size once, as Pillow decodes it (JPEGs decode already scaled
down by 2, 4 or 8 when the model needs less, `Image.draft`); conversion to RGB and shrinking by an
integer factor (`Image.reduce`, a box filter) then run tile by tile, so no full-size copy (RGBA,
float, composite) is made. Decodes of large images take one of the worker's `slots`
(`loader.FULL_SIZE_SLOTS`), which bounds how many full-size images a worker holds at once.
"""

from __future__ import annotations

import io
import math
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, ContextManager, Optional

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..domain.errors import LimitExceeded, Unprocessable, UnsupportedMedia

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
#: 16-bit value -> 8 bits, round(value / 257) (exact: value / 257 is never a half).
SIXTEEN_TO_EIGHT = ((np.arange(65536, dtype=np.uint32) + 128) // 257).astype(np.uint8)
#: Source pixels per tile when converting and shrinking a large image (a tile's RGBA copy: 4 MiB).
TILE_PIXELS = 1 << 20
#: Decoding shrinks an image while it stays at least MARGIN times what the model's processor resizes
#: it to, along each axis. Measured with the tests' tiny SigLIP 2, SigLIP and CLIP on 640x480 to
#: 4000x3000 PNGs and JPEGs: the shrunk image's vector has cosine >= 0.9994 with the full image's
#: at 3 (0.998 at 2: Pillow's box filter aliases more before a bicubic processor); NaFlex's
#: processor output stays within about one 8-bit step.
MARGIN = 3
#: Common factors `reduction` tries, from the largest down, before leaving an image as it is.
SEARCH = 256
#: Images with more decoded pixels than this take a full-size slot while they decode.
FULL_SIZE_PIXELS = 4_000_000
ORIENTATION = 0x0112
TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# Our own cap (IMAGE_MAX_PIXELS, checked from the header in open_image before any pixel is
# decoded) replaces Pillow's global one, so an oversized image gets a 413 that names its size.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class ImageInputSize:
    """What a model's image processor resizes an image to: `resized(width, height)` is the
    (width, height) it resizes an upright image of that size to. Decoding shrinks an image only
    while it stays at least MARGIN times that size along each axis (`reduction`)."""

    resized: Callable[[int, int], tuple[int, int]]

    @classmethod
    def fixed(cls, width: int, height: int) -> "ImageInputSize":
        """Every image resized to width x height (SigLIP)."""
        return cls(lambda w, h: (width, height))

    @classmethod
    def shortest_edge(cls, edge: int) -> "ImageInputSize":
        """The shorter side resized to `edge`, the aspect kept (CLIP, before its centre crop)."""

        def resized(w: int, h: int) -> tuple[int, int]:
            if w <= h:
                return edge, int(edge * h / w)
            return int(edge * w / h), edge

        return cls(resized)


#: For a loader called without a model's input size: keep the shorter side at least MARGIN x 1024.
DEFAULT_INPUT_SIZE = ImageInputSize.shortest_edge(1024)


def reduction(width: int, height: int, size: ImageInputSize) -> tuple[int, int]:
    """Integer (x, y) factors to shrink a width x height upright image by: it stays at least
    MARGIN times what `size` resizes it to along each axis, and `size` resizes the shrunk image
    to the same size as the original (so the processor sees the same geometry: NaFlex's patch
    grid, CLIP's crop). Axes shrink by different factors only when that holds (a fixed size);
    otherwise by the largest common factor for which it holds (1: not at all)."""
    target = size.resized(width, height)
    fx = max(1, width // (MARGIN * max(1, target[0])))
    fy = max(1, height // (MARGIN * max(1, target[1])))

    def keeps(ax: int, ay: int) -> bool:
        return size.resized(-(-width // ax), -(-height // ay)) == target

    if fx != fy and keeps(fx, fy):
        return fx, fy
    for factor in range(min(fx, fy), max(1, min(fx, fy) - SEARCH), -1):
        if keeps(factor, factor):
            return factor, factor
    return 1, 1


def draft_scale(width: int, height: int, size: ImageInputSize) -> int:
    """The JPEG DCT scale (1, 2, 4 or 8) to decode a width x height upright image at: at most
    `reduction`'s factors, and keeping the size the processor resizes it to."""
    most = min(reduction(width, height, size))
    target = size.resized(width, height)
    for scale in (8, 4, 2):
        if scale <= most and size.resized(-(-width // scale), -(-height // scale)) == target:
            return scale
    return 1


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


def _to_grey(image: Image.Image, float_max: Optional[float] = None) -> Image.Image:
    """16-bit, 32-bit integer or float greyscale -> 8-bit "L", as round(value / 257) clipped to
    0..255 (float images whose maximum, `float_max`, is at most 255: round(value)). Integers go
    through a 65536-entry table; no float copy of an integer image is made."""
    array = np.asarray(image)
    if image.mode == "F":
        peak = float_max if float_max is not None else float(array.max(initial=0))
        scale = 257.0 if peak > 255 else 1.0
        grey = np.clip(np.round(array.astype(np.float64) / scale), 0, 255).astype(np.uint8)
    else:
        if array.dtype != np.uint16:
            array = np.clip(array, 0, 65535)
        grey = SIXTEEN_TO_EIGHT[array]
    return Image.fromarray(grey, "L")


def to_rgb(image: Image.Image, float_max: Optional[float] = None) -> Image.Image:
    """Any Pillow mode -> RGB. 16-bit and float greyscale are scaled to 8 bits; transparency is
    composited onto white (as transformers' `convert_to_rgb`); CMYK, palette, greyscale and
    1-bit convert directly. `float_max`: the whole image's maximum when `image` is a tile of a
    float image."""
    if image.mode in SIXTEEN_BIT_MODES or image.mode == "F":
        image = _to_grey(image, float_max)
    if image.mode == "RGB":
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _tiles(width: int, height: int, fx: int, fy: int):
    """Boxes covering width x height, each about TILE_PIXELS, edges on multiples of the factors."""
    rows = fy * max(1, min(-(-height // fy), math.isqrt(max(1, TILE_PIXELS // (fx * fy)))))
    cols = fx * max(1, (TILE_PIXELS // rows) // fx)
    for top in range(0, height, rows):
        for left in range(0, width, cols):
            yield left, top, min(left + cols, width), min(top + rows, height)


def rgb_reduced(image: Image.Image, fx: int = 1, fy: int = 1) -> Image.Image:
    """`image` (loaded) -> RGB, shrunk by (fx, fy) with a box filter, converted tile by tile:
    the same pixels as `to_rgb(image).reduce((fx, fy))` without a full-size copy."""
    width, height = image.size
    if width * height <= TILE_PIXELS:
        rgb = to_rgb(image)
        return rgb if (fx, fy) == (1, 1) else rgb.reduce((fx, fy))
    float_max = float(image.getextrema()[1]) if image.mode == "F" else None
    out = Image.new("RGB", (-(-width // fx), -(-height // fy)))
    for box in _tiles(width, height, fx, fy):
        tile = to_rgb(image.crop(box), float_max)
        if (fx, fy) != (1, 1):
            tile = tile.reduce((fx, fy))
        out.paste(tile, (box[0] // fx, box[1] // fy))
    return out


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Bytes -> a Pillow image whose header is read and checked; no pixel is decoded.

    raises UnsupportedMedia (415) for anything but JPEG, PNG, WEBP, GIF (first frame) or BMP;
    LimitExceeded (413) when width x height exceeds `max_pixels`; Unprocessable (422) for a
    corrupt header or an image without pixels.
    """
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError:
        raise LimitExceeded(f"image has more pixels than IMAGE_MAX_PIXELS ({max_pixels})") from None
    except UnidentifiedImageError:
        raise UnsupportedMedia(
            f"unsupported image format ({_describe(data)}); send JPEG, PNG, WEBP, GIF or BMP"
        ) from None
    except Exception:
        raise Unprocessable("the image could not be decoded (corrupt header)") from None
    width, height = image.size
    if width * height > max_pixels:
        raise LimitExceeded(
            f"image is {width}x{height} = {width * height} pixels; at most {max_pixels} (IMAGE_MAX_PIXELS)"
        )
    if width == 0 or height == 0:
        raise Unprocessable("the image has no pixels")
    return image


def _upright(width: int, height: int, orientation: int) -> tuple[int, int]:
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _stored(factors: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (factors[1], factors[0]) if orientation in (5, 6, 7, 8) else factors


def decode_opened(
    image: Image.Image, size: Optional[ImageInputSize] = None, slots: Optional[ContextManager] = None
) -> Image.Image:
    """An image from `open_image` -> RGB PIL image, upright, shrunk toward `size` (never below
    MARGIN times what the model's processor resizes it to, `reduction`; JPEGs partly by decoding
    at a DCT scale, `draft_scale`; not at all when `size` is None). Decoding an
    image of more than FULL_SIZE_PIXELS pixels holds `slots` (a semaphore) until only the shrunk
    copy is left.

    raises Unprocessable (422) for truncated or corrupt data.
    """
    try:
        if size is not None and image.format == "JPEG":
            orientation = image.getexif().get(ORIENTATION, 1)  # JPEG: read at open, no decoding
            scale = draft_scale(*_upright(*image.size, orientation), size)
            if scale > 1:
                image.draft(image.mode, (image.size[0] // scale, image.size[1] // scale))
        width, height = image.size
        large = width * height > FULL_SIZE_PIXELS and slots is not None
        with slots if large else nullcontext():
            image.load()
            orientation = image.getexif().get(ORIENTATION, 1)
            factors = (1, 1)
            if size is not None:
                factors = _stored(reduction(*_upright(width, height, orientation), size), orientation)
            rgb = rgb_reduced(image, *factors)
            if rgb is image:  # a small RGB image: keep its pixels, let go of its file and bytes
                rgb = image.copy()
            image.close()
        method = TRANSPOSE.get(orientation)
        return rgb.transpose(method) if method is not None else rgb
    except Image.DecompressionBombError:
        raise LimitExceeded("image has more pixels than IMAGE_MAX_PIXELS") from None
    except Exception:
        raise Unprocessable("the image could not be decoded (truncated or corrupt data)") from None


def decode_image(
    data: bytes, max_pixels: int, size: Optional[ImageInputSize] = None, slots: Optional[ContextManager] = None
) -> Image.Image:
    """Bytes -> RGB PIL image, upright (`open_image`, then `decode_opened`).

    raises UnsupportedMedia (415) for anything but JPEG, PNG, WEBP, GIF (first frame) or BMP;
    LimitExceeded (413) when width x height exceeds `max_pixels` (read from the header, before
    decoding); Unprocessable (422) for truncated or corrupt data.
    """
    return decode_opened(open_image(data, max_pixels), size, slots)
