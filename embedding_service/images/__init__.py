"""Image inputs: turning request sources (data URIs, base64, URLs, allowed local paths, uploads)
into RGB images concurrently (loader.py), one source read into bytes or a header (sources.py),
URLs downloaded safely (fetch.py), untrusted bytes decoded (decode.py), and a request's fair
share of the thread pools (tasks.py)."""

from .loader import ImageLoader

__all__ = ["ImageLoader"]
