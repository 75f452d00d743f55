"""Turning the strings and uploads of a request into RGB images, within the request's budgets.

A source is a data URI, bare base64, an http(s) URL, a local path (only inside IMAGE_LOCAL_DIRS),
or the bytes of a multipart upload. A request's images load in two phases:

1. Read: every image's bytes and header, no pixel decoded. URLs are counted first
   (IMAGE_MAX_URLS, before any connection). Inline sources and local paths are read on the
   request thread (a local file's header only; its bytes are read again when it is decoded).
   URLs are fetched on the worker's fetch threads, at most `fetch_share` of them at a time for
   one request, all by one deadline (IMAGE_FETCH_DEADLINE). Width x height is summed from the
   headers as they come (IMAGE_MAX_REQUEST_PIXELS).
2. Decode: on the worker's decode threads, at most `decode_share` at a time for one request;
   each image is shrunk toward the model's input size as it decodes, and a large one holds one of
   the worker's FULL_SIZE_SLOTS while it is at full size (decode.py).

The first failing image fails the request with its index (`images[2]: ...`); the request's
other fetches and decodes are cancelled (queued ones never start, running fetches stop at their
next chunk). One bad image never harms the server or another request.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Union
from urllib.parse import unquote

from PIL import Image

from ..domain.errors import InvalidInput, NotAllowed, LimitExceeded, ServiceError, Unprocessable
from ..config.settings import Settings
from .decode import DEFAULT_INPUT_SIZE, ImageInputSize, decode_opened, has_signature, open_image
from .fetch import UrlFetcher

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
#: Full-size decodes (images over decode.FULL_SIZE_PIXELS) a worker runs at once. Each holds one
#: decoded image at up to IMAGE_MAX_PIXELS (40M pixels: 160 MB in Pillow's 4-byte RGB/RGBA/CMYK
#: layout, 80 MB at 16-bit) plus its encoded bytes; two bound that to about 400 MB per worker and
#: still decode two large images in parallel (Pillow's decoders release the GIL).
FULL_SIZE_SLOTS = 2
#: A request may use 1/FETCH_SHARE of the fetch threads and 1/DECODE_SHARE of the decode threads.
FETCH_SHARE = 4
DECODE_SHARE = 2
#: How long past IMAGE_FETCH_DEADLINE the request thread waits for fetch threads to give up by
#: themselves (they check the same deadline; a blocked name lookup may not).
DEADLINE_GRACE = 0.25


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


@dataclass
class _Item:
    """One image of a request between the phases: its opened (header-only) image, or the real
    path of a local file and its pixel count from the header."""

    index: int
    kind: str
    image: Optional[Image.Image] = None
    path: Optional[str] = None
    pixels: int = 0


class _Late(Exception):
    """The deadline passed with tasks unfinished; args[0]: the first unfinished task's index."""


def _tagged(err: ServiceError, param: str, index: int) -> ServiceError:
    err.message = f"{param}[{index}]: {err.message}"
    err.args = (err.message,)
    err.param = param
    return err


class _Window:
    """Tasks of one request on a shared pool, at most `width` of them queued or running at once;
    the next is submitted as one finishes."""

    def __init__(self, pool: ThreadPoolExecutor, width: int, tasks: Iterable[tuple[int, Callable[[], Any]]]):
        self.pool, self.width, self.tasks = pool, max(1, width), iter(tasks)
        self.running: dict[Future, int] = {}
        #: The index of the task whose error `results` raised.
        self.failed: Optional[int] = None
        self._fill()

    def _fill(self) -> None:
        while len(self.running) < self.width:
            task = next(self.tasks, None)
            if task is None:
                return
            self.running[self.pool.submit(task[1])] = task[0]

    def results(self, deadline: Optional[float] = None) -> Iterator[tuple[int, Any]]:
        """(index, result) as tasks finish; a task's error propagates as raised (its index in
        `failed`); raises _Late when `deadline` (time.monotonic()) passes first."""
        while self.running:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = wait(list(self.running), timeout=timeout, return_when=FIRST_COMPLETED)
            if not done:
                raise _Late(min(self.running.values()))
            for future in sorted(done, key=self.running.__getitem__):
                index = self.running.pop(future)
                try:
                    result = future.result()
                except BaseException:
                    self.failed = index
                    raise
                yield index, result
            self._fill()

    @contextmanager
    def guarded(self, current: list[int]) -> Iterator["_Window"]:
        """Within the block: a failing task's index goes to `current[0]` (for the error message);
        on leaving it, whatever is still queued is cancelled."""
        try:
            yield self
        except ServiceError:
            if self.failed is not None:
                current[0] = self.failed
            raise
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Queued tasks never start; running ones finish on their own (see the loader's event)."""
        for future in self.running:
            future.cancel()
        self.running.clear()
        self.tasks = iter(())


class ImageLoader:
    """Loads request images under the settings' per-image and per-request budgets, on two small
    thread pools per worker (fetching, decoding), each shared fairly between requests."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.fetcher = UrlFetcher(settings)
        workers = settings.image_fetch_workers
        self.fetch_pool = ThreadPoolExecutor(workers, thread_name_prefix="image-fetch")
        self.decode_pool = ThreadPoolExecutor(workers, thread_name_prefix="image-decode")
        self.fetch_share = max(1, workers // FETCH_SHARE)
        self.decode_share = max(1, workers // DECODE_SHARE)
        self.full_size = threading.BoundedSemaphore(FULL_SIZE_SLOTS)
        #: Optional metrics observer (metrics.ImageObserver): image(source, outcome).
        self.observer = None

    # ---------------------------------------------------------------- a request's images
    def load(
        self,
        sources: Sequence[Union[str, bytes]],
        param: str = "images",
        size: Optional[ImageInputSize] = None,
        indices: Optional[Sequence[int]] = None,
    ) -> list[Image.Image]:
        """RGB images in input order, each shrunk toward `size` (the model's image input size,
        `MultimodalModel.image_input_size`; a generic one when None). raises the first failing
        image's error, its message prefixed with `param[index]` (`indices[i]` names `sources[i]`
        when given), after cancelling the request's other fetches and decodes:
        400/403/415/422 for a bad image, 413 past IMAGE_MAX_BYTES, IMAGE_MAX_PIXELS,
        IMAGE_MAX_URLS or IMAGE_MAX_REQUEST_PIXELS, 422 past IMAGE_FETCH_DEADLINE."""
        names = list(indices) if indices is not None else list(range(len(sources)))
        items = [_Item(i, source_kind(source)) for i, source in enumerate(sources)]
        cancelled = threading.Event()  # set on failure: the request's running fetches stop
        current = [-1]  # the position of the image an error belongs to (-1: the whole request)
        try:
            self._check_url_count(sources, names, param)
            self._read(sources, items, cancelled, current)
            return self._decode(items, size or DEFAULT_INPUT_SIZE, current)
        except ServiceError as err:
            cancelled.set()
            if current[0] >= 0:
                if self.observer is not None:
                    self.observer.image(items[current[0]].kind, err.kind)
                raise _tagged(err, param, names[current[0]]) from None
            raise
        except BaseException:
            cancelled.set()
            raise

    def _check_url_count(self, sources: Sequence[Union[str, bytes]], names: list[int], param: str) -> None:
        urls = [i for i, source in enumerate(sources) if is_fetched_url(source)]
        limit = self.settings.image_max_urls
        if len(urls) > limit:
            raise LimitExceeded(
                f"{param}[{names[urls[limit]]}]: the request names {len(urls)} image URLs; "
                f"at most {limit} image URLs per request (IMAGE_MAX_URLS)",
                param=param,
            )

    def _read(self, sources: Sequence[Union[str, bytes]], items: list[_Item], cancelled: threading.Event, current: list[int]) -> None:
        """Phase 1: every item's header; URLs last, fetched `fetch_share` at a time."""
        urls, total = [], 0
        for item, source in zip(items, sources):
            current[0] = item.index
            if is_fetched_url(source):
                urls.append(item.index)
                continue
            data = self._inline(source)
            if data is None:  # a local path
                item.path, item.pixels = self._local_header(str(source).strip())
            else:
                item.image = open_image(data, self.settings.image_max_pixels)
                item.pixels = item.image.size[0] * item.image.size[1]
            total = self._count_pixels(items, total + item.pixels, current)
        current[0] = -1
        if not urls:
            return
        seconds = self.settings.image_fetch_deadline
        deadline = time.monotonic() + seconds
        late = f"the request's image URLs did not all download within {seconds:g}s (IMAGE_FETCH_DEADLINE)"

        def fetch(url: str) -> Image.Image:
            data = self.fetcher.fetch(url, deadline=deadline, cancelled=cancelled, deadline_message=late)
            return open_image(data, self.settings.image_max_pixels)

        window = _Window(self.fetch_pool, self.fetch_share, ((i, lambda url=sources[i].strip(): fetch(url)) for i in urls))
        try:
            with window.guarded(current):
                for index, image in window.results(deadline + DEADLINE_GRACE):
                    items[index].image = image
                    items[index].pixels = image.size[0] * image.size[1]
                    total = self._count_pixels(items, total + items[index].pixels, current)
        except _Late as late_task:
            current[0] = late_task.args[0]
            raise Unprocessable(late) from None

    def _count_pixels(self, items: list[_Item], total: int, current: list[int]) -> int:
        """`total`, the pixels of the headers read so far; raises LimitExceeded (413) once it
        is more than IMAGE_MAX_REQUEST_PIXELS, naming the image that passes it when the headers
        read so far are summed in input order (URLs arrive in any order)."""
        limit = self.settings.image_max_request_pixels
        if total <= limit:
            return total
        total = 0
        for item in items:
            total += item.pixels
            if total > limit:
                current[0] = item.index
                raise LimitExceeded(
                    f"the request's images up to this one have {total} pixels (width x height summed); "
                    f"at most {limit} pixels per request (IMAGE_MAX_REQUEST_PIXELS)"
                )
        return total

    def _decode(self, items: list[_Item], size: ImageInputSize, current: list[int]) -> list[Image.Image]:
        """Phase 2: every item decoded and shrunk, `decode_share` at a time."""
        images: list[Optional[Image.Image]] = [None] * len(items)
        tasks = ((item.index, lambda item=item: self._decode_one(item, size)) for item in items)
        with _Window(self.decode_pool, self.decode_share, tasks).guarded(current) as window:
            for index, image in window.results():
                images[index] = image
                if self.observer is not None:
                    self.observer.image(items[index].kind, "ok")
        return images  # type: ignore[return-value]

    def _decode_one(self, item: _Item, size: ImageInputSize) -> Image.Image:
        image, item.image = item.image, None
        if image is None:  # a local file: read it again, and hold it to its header's size
            if item.path is None:
                raise Unprocessable("the image could not be read again")
            image = open_image(self._local_bytes(item.path), self.settings.image_max_pixels)
            if image.size[0] * image.size[1] > item.pixels:
                raise Unprocessable("the image file changed while the request was read")
        return decode_opened(image, size, self.full_size)

    # ---------------------------------------------------------------- one source
    def _inline(self, source: Union[str, bytes]) -> Optional[bytes]:
        """The encoded bytes of an upload, data URI or base64 string; None for a local path.
        raises InvalidInput (400) for a string that is none of the accepted forms, LimitExceeded
        (413) past IMAGE_MAX_BYTES."""
        if isinstance(source, bytes):
            return self._capped(source)
        text = source.strip()
        if not text:
            raise InvalidInput(f"empty image string; {ACCEPTED}")
        if "\x00" in text:
            raise InvalidInput(f"the image string contains a NUL character; {ACCEPTED}")
        if text[:5].lower() == "data:":
            return self._data_uri(text)
        scheme = SCHEME.match(text)
        if scheme and scheme.group(2):
            name = scheme.group(1).lower()
            raise InvalidInput(f"URL scheme {name}:// is not allowed for images; use http(s), a data URI, base64 or a local path")
        if len(text) >= MIN_BASE64 and BASE64ISH.match(text) and not text.startswith("/"):
            return self._base64(text)
        if BASE64ISH.match(text):
            # Bare base64 and paths overlap ("/9j/..." is a JPEG): a base64-looking string is an
            # image (or a named foreign format, for its 415) when it decodes to a known signature.
            try:
                data = self._base64(text)
            except InvalidInput:
                data = b""
            if has_signature(data):
                return data
        if PATHISH.search(text):
            return None
        raise InvalidInput(f"not an image: {ACCEPTED}")

    def _capped(self, data: bytes) -> bytes:
        if len(data) > self.settings.image_max_bytes:
            raise LimitExceeded(f"the image is {len(data)} bytes; at most {self.settings.image_max_bytes} (IMAGE_MAX_BYTES)")
        return data

    def _data_uri(self, text: str) -> bytes:
        header, comma, payload = text.partition(",")
        if not comma or not header.lower().endswith(";base64"):
            raise InvalidInput("a data URI must be base64: data:image/<type>;base64,<data>")
        return self._base64(payload)

    def _base64(self, text: str) -> bytes:
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
        return self._capped(data)

    def _local_open(self, text: str) -> tuple[int, str]:
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

    def _local_header(self, text: str) -> tuple[str, int]:
        """(real path, width x height) of a local image, from its header alone."""
        fd, real = self._local_open(text)
        try:
            with os.fdopen(fd, "rb", closefd=False) as handle:
                head = handle.read(min(self.settings.image_max_bytes, 1 << 20) + 1)
                try:
                    image = open_image(head, self.settings.image_max_pixels)
                except Unprocessable:  # a header longer than the first MiB (large metadata)
                    handle.seek(0)
                    image = open_image(self._capped(handle.read(self.settings.image_max_bytes + 1)), self.settings.image_max_pixels)
                return real, image.size[0] * image.size[1]
        finally:
            os.close(fd)

    def _local_bytes(self, real: str) -> bytes:
        fd, _ = self._local_open(real)
        try:
            with os.fdopen(fd, "rb", closefd=False) as handle:
                return self._capped(handle.read(self.settings.image_max_bytes + 1))
        finally:
            os.close(fd)
