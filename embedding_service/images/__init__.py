"""Image inputs (SPEC §2): reading sources safely (sources.py, fetch.py) and decoding (decode.py)."""

from .loader import ImageLoader

__all__ = ["ImageLoader"]
