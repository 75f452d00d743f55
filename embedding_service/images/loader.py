"""Turning the strings and uploads of a request into RGB images, concurrently and safely.

A source is a data URI, bare base64, an http(s) URL, a local path (only inside IMAGE_LOCAL_DIRS),
or the bytes of a multipart upload. One bad image fails the request with its index in the
message (`images[2]: ...`); it never harms the server or another request.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence, Union
from urllib.parse import unquote

from PIL import Image

from ..errors import BadRequest, Forbidden, PayloadTooLarge, ServiceError, Unprocessable
from ..settings import Settings
from .decode import decode_image, has_signature
from .fetch import UrlFetcher

SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(//)?")
BASE64ISH = re.compile(r"^[A-Za-z0-9+/_\-\s]+={0,2}\s*$")
#: Strings at least this long made only of base64 characters are base64, not paths.
MIN_BASE64 = 64


def source_kind(source: Union[str, bytes]) -> str:
    """`upload`, `data_uri`, `url`, `base64` or `path`, for metrics (a cheap guess, no I/O)."""
    if isinstance(source, bytes):
        return "upload"
    text = source.strip()
    if text[:5].lower() == "data:":
        return "data_uri"
    if SCHEME.match(text):
        return "url"
    return "base64" if len(text) >= MIN_BASE64 and BASE64ISH.match(text) and not text.startswith("/") else "path"


class ImageLoader:
    """Loads request images on a small thread pool (fetching and decoding run concurrently)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.fetcher = UrlFetcher(settings)
        self.pool = ThreadPoolExecutor(settings.image_fetch_workers, thread_name_prefix="image-load")
        #: Optional metrics observer (metrics.ImageObserver): image(source, outcome).
        self.observer = None

    def load(self, sources: Sequence[Union[str, bytes]], param: str = "images") -> list[Image.Image]:
        """RGB images in input order; raises the first failing image's error (by index), its
        message prefixed with `param[index]`."""
        futures = [self.pool.submit(self.load_one, source) for source in sources]
        images, failure = [], None
        for index, future in enumerate(futures):
            try:
                images.append(future.result())
            except ServiceError as err:
                if failure is None:
                    err.message = f"{param}[{index}]: {err.message}"
                    err.args = (err.message,)
                    err.param = param
                    failure = err
        if failure is not None:
            raise failure
        return images

    def load_one(self, source: Union[str, bytes]) -> Image.Image:
        kind = source_kind(source)
        try:
            image = decode_image(self.read(source), self.settings.image_max_pixels)
        except ServiceError as err:
            if self.observer is not None:
                self.observer.image(kind, str(err.status))
            raise
        if self.observer is not None:
            self.observer.image(kind, "ok")
        return image

    def read(self, source: Union[str, bytes]) -> bytes:
        """The encoded bytes of one source (see module doc); raises 400/403/413/422 errors."""
        if isinstance(source, bytes):
            return self._capped(source)
        text = source.strip()
        if not text:
            raise BadRequest("empty image string")
        if text[:5].lower() == "data:":
            return self._data_uri(text)
        scheme = SCHEME.match(text)
        if scheme and scheme.group(2):
            name = scheme.group(1).lower()
            if name in ("http", "https"):
                return self.fetcher.fetch(text)
            raise BadRequest(f"URL scheme {name}:// is not allowed for images; use http(s), a data URI, base64 or a local path")
        if len(text) >= MIN_BASE64 and BASE64ISH.match(text):
            # Bare base64 and absolute paths overlap ("/9j/..." is a JPEG); a string that starts
            # with "/" is a path unless it decodes to something with a file signature.
            if not text.startswith("/"):
                return self._base64(text)
            try:
                data = self._base64(text)
            except BadRequest:
                data = b""
            if has_signature(data):
                return data
        return self._local(text)

    def _capped(self, data: bytes) -> bytes:
        if len(data) > self.settings.image_max_bytes:
            raise PayloadTooLarge(f"the image is {len(data)} bytes; at most {self.settings.image_max_bytes} (IMAGE_MAX_BYTES)")
        return data

    def _data_uri(self, text: str) -> bytes:
        header, comma, payload = text.partition(",")
        if not comma or not header.lower().endswith(";base64"):
            raise BadRequest("a data URI must be base64: data:image/<type>;base64,<data>")
        return self._base64(payload)

    def _base64(self, text: str) -> bytes:
        compact = "".join(text.split())
        if len(compact) * 3 // 4 > self.settings.image_max_bytes + 3:
            raise PayloadTooLarge(f"the image is larger than {self.settings.image_max_bytes} bytes (IMAGE_MAX_BYTES)")
        compact += "=" * (-len(compact) % 4)
        try:
            if "-" in compact or "_" in compact:
                data = base64.urlsafe_b64decode(compact)
            else:
                data = base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("invalid base64 image data") from None
        return self._capped(data)

    def _local(self, text: str) -> bytes:
        folders = self.settings.image_local_dirs
        if not folders:
            raise Forbidden("local image paths are disabled; set IMAGE_LOCAL_DIRS to allow folders")
        path = unquote(text)
        if not os.path.isabs(path):
            raise Forbidden("local image paths must be absolute and inside IMAGE_LOCAL_DIRS")
        real = os.path.realpath(path)
        if not any(real == folder or real.startswith(folder.rstrip(os.sep) + os.sep) for folder in folders):
            raise Forbidden("the image path is outside the folders allowed by IMAGE_LOCAL_DIRS")
        try:
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            raise Unprocessable("no image file at that path") from None
        except OSError:
            raise Forbidden("the image path cannot be opened") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise Forbidden("the image path is not a regular file")
            if info.st_size > self.settings.image_max_bytes:
                raise PayloadTooLarge(
                    f"the image is {info.st_size} bytes; at most {self.settings.image_max_bytes} (IMAGE_MAX_BYTES)"
                )
            with os.fdopen(fd, "rb", closefd=False) as handle:
                return self._capped(handle.read(self.settings.image_max_bytes + 1))
        finally:
            os.close(fd)
