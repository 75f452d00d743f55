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

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional, Sequence, Union

from PIL import Image

from ..config.settings import Settings
from ..domain.errors import LimitExceeded, ServiceError, Unprocessable
from ..observability import tracing
from .decode import DEFAULT_INPUT_SIZE, ImageInputSize, decode_opened, open_image
from .fetch import UrlFetcher
from .sources import SourceReader, is_fetched_url, source_kind
from .tasks import Blame, Late, TaskWindow

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


@dataclass
class _Item:
    """One image of a request between the phases: its opened (header-only) image, or the real
    path of a local file and its pixel count from the header."""

    index: int
    kind: str
    image: Optional[Image.Image] = None
    path: Optional[str] = None
    pixels: int = 0


def _tagged(err: ServiceError, param: str, index: int) -> ServiceError:
    err.message = f"{param}[{index}]: {err.message}"
    err.args = (err.message,)
    err.param = param
    return err


class ImageLoader:
    """Loads request images under the settings' per-image and per-request budgets, on two small
    thread pools per worker (fetching, decoding), each shared fairly between requests."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.fetcher = UrlFetcher(settings)
        self.reader = SourceReader(settings)
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
        blame = Blame()  # the image an error belongs to (None: the whole request)
        try:
            self._check_url_count(sources, names, param)
            self._read(sources, items, cancelled, blame)
            return self._decode(items, size or DEFAULT_INPUT_SIZE, blame)
        except ServiceError as err:
            cancelled.set()
            if blame.at is not None:
                if self.observer is not None:
                    self.observer.image(items[blame.at].kind, err.kind)
                raise _tagged(err, param, names[blame.at]) from None
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

    def _read(self, sources: Sequence[Union[str, bytes]], items: list[_Item], cancelled: threading.Event, blame: Blame) -> None:
        """Phase 1: every item's header; URLs last, fetched `fetch_share` at a time."""
        urls, total = [], 0
        for item, source in zip(items, sources):
            blame.at = item.index
            if is_fetched_url(source):
                urls.append(item.index)
                continue
            data = self.reader.inline(source)
            if data is None:  # a local path
                item.path, item.pixels = self.reader.local_header(str(source).strip())
            else:
                item.image = open_image(data, self.settings.image_max_pixels)
                item.pixels = item.image.size[0] * item.image.size[1]
            total = self._count_pixels(items, total + item.pixels, blame)
        blame.at = None
        if not urls:
            return
        seconds = self.settings.image_fetch_deadline
        deadline = time.monotonic() + seconds
        late = f"the request's image URLs did not all download within {seconds:g}s (IMAGE_FETCH_DEADLINE)"

        parent = tracing.current_context()

        def fetch(index: int, url: str) -> Image.Image:
            with tracing.span_in(parent, "image fetch", **{"image.index": index}):
                data = self.fetcher.fetch(url, deadline=deadline, cancelled=cancelled, deadline_message=late)
                return open_image(data, self.settings.image_max_pixels)

        window = TaskWindow(self.fetch_pool, self.fetch_share,
                            ((i, lambda i=i, url=sources[i].strip(): fetch(i, url)) for i in urls))
        try:
            with window.guarded(blame):
                for index, image in window.results(deadline + DEADLINE_GRACE):
                    items[index].image = image
                    items[index].pixels = image.size[0] * image.size[1]
                    total = self._count_pixels(items, total + items[index].pixels, blame)
        except Late as late_task:
            blame.at = late_task.args[0]
            raise Unprocessable(late) from None

    def _count_pixels(self, items: list[_Item], total: int, blame: Blame) -> int:
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
                blame.at = item.index
                raise LimitExceeded(
                    f"the request's images up to this one have {total} pixels (width x height summed); "
                    f"at most {limit} pixels per request (IMAGE_MAX_REQUEST_PIXELS)"
                )
        return total

    def _decode(self, items: list[_Item], size: ImageInputSize, blame: Blame) -> list[Image.Image]:
        """Phase 2: every item decoded and shrunk, `decode_share` at a time."""
        images: list[Optional[Image.Image]] = [None] * len(items)
        parent = tracing.current_context()

        def decode(item: _Item) -> Image.Image:
            with tracing.span_in(parent, "image decode", **{"image.index": item.index}):
                return self._decode_one(item, size)

        tasks = ((item.index, lambda item=item: decode(item)) for item in items)
        with TaskWindow(self.decode_pool, self.decode_share, tasks).guarded(blame) as window:
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
            image = open_image(self.reader.local_bytes(item.path), self.settings.image_max_pixels)
            if image.size[0] * image.size[1] > item.pixels:
                raise Unprocessable("the image file changed while the request was read")
        return decode_opened(image, size, self.full_size)
