"""Image inputs: turning request sources (data URIs, base64, URLs, allowed local paths, uploads)
into RGB images concurrently (loader.py), downloading URLs safely (fetch.py) and decoding
untrusted bytes (decode.py)."""

from .loader import ImageLoader

__all__ = ["ImageLoader"]
