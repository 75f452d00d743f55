"""One image source of a request as bytes or an opened header, without decoding any pixels: a
data URI, bare base64, a multipart upload, or a local path inside IMAGE_LOCAL_DIRS (URLs are
fetch.py's). Each failure names the rule it breaks."""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from typing import Optional, Union
from urllib.parse import unquote

from ..config.settings import Settings
from ..domain.errors import InvalidInput, LimitExceeded, NotAllowed, Unprocessable
from .decode import has_signature, open_image

SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(//)?")
BASE64ISH = re.compile(r"^[A-Za-z0-9+/_\-\s]+={0,2}\s*$")
#: Strings at least this long made only of base64 characters are base64, not paths.
MIN_BASE64 = 64
#: A string that is not an image but looks like a file path: separators, or a file extension.
PATHISH = re.compile(r"[/\\]|^~|\.[A-Za-z0-9]{1,5}$")
ACCEPTED = (
    "send a data URI (data:image/png;base64,...), base64 image data, an http(s) URL, or a local path "
    "inside IMAGE_LOCAL_DIRS"
)


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


def is_fetched_url(source: Union[str, bytes]) -> bool:
    """True for a string the loader downloads: an http:// or https:// URL."""
    if isinstance(source, bytes):
        return False
    match = SCHEME.match(source.strip())
    return bool(match and match.group(2) and match.group(1).lower() in ("http", "https"))


class SourceReader:
    """Reads sources under the settings' IMAGE_MAX_BYTES, IMAGE_MAX_PIXELS and IMAGE_LOCAL_DIRS."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def inline(self, source: Union[str, bytes]) -> Optional[bytes]:
        """The encoded bytes of an upload, data URI or base64 string; None for a local path.
        raises InvalidInput (400) for a string that is none of the accepted forms, LimitExceeded
        (413) past IMAGE_MAX_BYTES."""
        if isinstance(source, bytes):
            return self.capped(source)
        text = source.strip()
        if not text:
            raise InvalidInput(f"empty image string; {ACCEPTED}")
        if "\x00" in text:
            raise InvalidInput(f"the image string contains a NUL character; {ACCEPTED}")
        if text[:5].lower() == "data:":
            return self.data_uri(text)
        scheme = SCHEME.match(text)
        if scheme and scheme.group(2):
            name = scheme.group(1).lower()
            raise InvalidInput(f"URL scheme {name}:// is not allowed for images; use http(s), a data URI, base64 or a local path")
        if len(text) >= MIN_BASE64 and BASE64ISH.match(text) and not text.startswith("/"):
            return self.base64_bytes(text)
        if BASE64ISH.match(text):
            # Bare base64 and paths overlap ("/9j/..." is a JPEG): a base64-looking string is an
            # image (or a named foreign format, for its 415) when it decodes to a known signature.
            try:
                data = self.base64_bytes(text)
            except InvalidInput:
                data = b""
            if has_signature(data):
                return data
        if PATHISH.search(text):
            return None
        raise InvalidInput(f"not an image: {ACCEPTED}")

    def capped(self, data: bytes) -> bytes:
        if len(data) > self.settings.image_max_bytes:
            raise LimitExceeded(f"the image is {len(data)} bytes; at most {self.settings.image_max_bytes} (IMAGE_MAX_BYTES)")
        return data

    def data_uri(self, text: str) -> bytes:
        header, comma, payload = text.partition(",")
        if not comma or not header.lower().endswith(";base64"):
            raise InvalidInput("a data URI must be base64: data:image/<type>;base64,<data>")
        return self.base64_bytes(payload)

    def base64_bytes(self, text: str) -> bytes:
        compact = "".join(text.split())
        if len(compact) * 3 // 4 > self.settings.image_max_bytes + 3:
            raise LimitExceeded(f"the image is larger than {self.settings.image_max_bytes} bytes (IMAGE_MAX_BYTES)")
        compact += "=" * (-len(compact) % 4)
        try:
            if "-" in compact or "_" in compact:
                data = base64.urlsafe_b64decode(compact)
            else:
                data = base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("invalid base64 image data") from None
        return self.capped(data)

    def local_open(self, text: str) -> tuple[int, str]:
        """(open file descriptor, real path) of a local image path inside IMAGE_LOCAL_DIRS.
        raises NotAllowed (403), Unprocessable (422: no such file), LimitExceeded (413)."""
        path = unquote(text)
        if "\x00" in path:
            raise InvalidInput(f"the image path contains a NUL character; {ACCEPTED}")
        folders = self.settings.image_local_dirs
        if not folders:
            raise NotAllowed("local image paths are disabled; set IMAGE_LOCAL_DIRS to allow folders")
        if not os.path.isabs(path):
            raise NotAllowed("local image paths must be absolute and inside IMAGE_LOCAL_DIRS")
        real = os.path.realpath(path)
        if not any(real == folder or real.startswith(folder.rstrip(os.sep) + os.sep) for folder in folders):
            raise NotAllowed("the image path is outside the folders allowed by IMAGE_LOCAL_DIRS")
        try:
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            raise Unprocessable("no image file at that path") from None
        except OSError:
            raise NotAllowed("the image path cannot be opened") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise NotAllowed("the image path is not a regular file")
            if info.st_size > self.settings.image_max_bytes:
                raise LimitExceeded(
                    f"the image is {info.st_size} bytes; at most {self.settings.image_max_bytes} (IMAGE_MAX_BYTES)"
                )
        except BaseException:
            os.close(fd)
            raise
        return fd, real

    def local_header(self, text: str) -> tuple[str, int]:
        """(real path, width x height) of a local image, from its header alone."""
        fd, real = self.local_open(text)
        try:
            with os.fdopen(fd, "rb", closefd=False) as handle:
                head = handle.read(min(self.settings.image_max_bytes, 1 << 20) + 1)
                try:
                    image = open_image(head, self.settings.image_max_pixels)
                except Unprocessable:  # a header longer than the first MiB (large metadata)
                    handle.seek(0)
                    image = open_image(self.capped(handle.read(self.settings.image_max_bytes + 1)), self.settings.image_max_pixels)
                return real, image.size[0] * image.size[1]
        finally:
            os.close(fd)

    def local_bytes(self, real: str) -> bytes:
        fd, _ = self.local_open(real)
        try:
            with os.fdopen(fd, "rb", closefd=False) as handle:
                return self.capped(handle.read(self.settings.image_max_bytes + 1))
        finally:
            os.close(fd)
