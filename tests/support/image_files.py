"""Real image files generated for the tests, and a loopback HTTP server that serves them and
misbehaves on request (redirects, endless bodies, slow drips) while counting connections."""

from __future__ import annotations

import base64
import io
import struct
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image


def picture(width: int = 48, height: int = 32, seed: int = 0) -> Image.Image:
    """A smooth RGB gradient with a bright corner block: orientation is visible."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], axis=-1)
    base = (base + rng.integers(0, 20, size=(1, 1, 3))).clip(0, 255).astype(np.uint8)
    base[: height // 3, : width // 3] = [255, 255, 0]
    return Image.fromarray(base, "RGB")


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def exif_rotated_jpeg(upright: Image.Image) -> bytes:
    """The upright picture stored sideways with EXIF Orientation=6 (display rotated 90° CW)."""
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(stored, "JPEG", quality=100, exif=exif.tobytes())


def sixteen_bit_png() -> bytes:
    array = (np.linspace(0, 65535, 48 * 32).reshape(32, 48)).astype(np.uint16)
    image = Image.fromarray(array)
    assert image.mode.startswith("I;16")
    return encode(image, "PNG")


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A PNG of a few dozen bytes whose header declares width x height RGB pixels."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def sample_files() -> dict[str, bytes]:
    """One file per format and mode the decoder must handle."""
    rgb = picture()
    rgba = rgb.convert("RGBA")
    alpha = np.repeat(np.linspace(0, 255, rgb.height).round().astype(np.uint8)[:, None], rgb.width, axis=1)
    rgba.putalpha(Image.fromarray(alpha))  # row 0 fully transparent, last row opaque
    return {
        "jpeg": encode(rgb, "JPEG", quality=95),
        "png_alpha": encode(rgba, "PNG"),
        "gif_palette": encode(rgb.convert("P", palette=Image.Palette.ADAPTIVE), "GIF"),
        "webp": encode(rgb, "WEBP", quality=90),
        "bmp": encode(rgb, "BMP"),
        "greyscale": encode(rgb.convert("L"), "PNG"),
        "cmyk_jpeg": encode(rgb.convert("CMYK"), "JPEG", quality=95),
        "png16": sixteen_bit_png(),
        "exif_jpeg": exif_rotated_jpeg(rgb),
    }


class ImageServer:
    """Threaded HTTP server on 127.0.0.1 (or another loopback address). Paths:
    /image.png, /redirect?to=URL, /endless (no Content-Length, never ends), /liar (claims 100
    bytes, sends megabytes), /slow (drips a byte every 0.3 s), /delay.png (0.5 s, then the image),
    /missing (404). `connections` counts accepted connections."""

    def __init__(self, png: bytes, host: str = "127.0.0.1"):
        self.png = png
        self.connections = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def setup(self):
                server.connections += 1
                super().setup()

            def log_message(self, *args):
                pass

            def do_GET(self):
                try:
                    server.route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def route(self, handler: BaseHTTPRequestHandler) -> None:
        path, _, query = handler.path.partition("?")
        if path in ("/image.png", "/delay.png"):
            if path == "/delay.png":
                time.sleep(0.5)
            handler.send_response(200)
            handler.send_header("Content-Type", "image/png")
            handler.send_header("Content-Length", str(len(self.png)))
            handler.end_headers()
            handler.wfile.write(self.png)
        elif path == "/redirect":
            handler.send_response(302)
            handler.send_header("Location", query.removeprefix("to="))
            handler.end_headers()
        elif path in ("/endless", "/liar"):
            handler.send_response(200)
            if path == "/liar":
                handler.send_header("Content-Length", "100")
            handler.end_headers()
            block = b"\x89PNG" + b"\x00" * 65532
            for _ in range(10_000):
                handler.wfile.write(block)
        elif path == "/slow":
            handler.send_response(200)
            handler.end_headers()
            for byte in self.png:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(0.3)
        else:
            handler.send_response(404)
            handler.end_headers()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never answers; `connections`
    counts them. Connections stay open until `close`."""

    def __init__(self):
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self.held: list = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self.held.append(conn)

    def close(self) -> None:
        self.closed = True
        self.sock.close()
        for conn in self.held:
            conn.close()


def large_png(width: int, height: int, mode: str = "RGBA", noise: bool = False) -> bytes:
    """A smooth `mode` PNG of width x height (compresses well; decodes to the full size):
    "I;16" (16-bit greyscale), "RGB", "RGBA" or "RGB16" (a 16-bit-per-channel RGB PNG, written by
    hand; with `noise`, random pixels: about 6 bytes per pixel, whatever the compression)."""
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    if mode == "I;16":
        return encode(Image.fromarray(((x * 0.7 + y * 0.3) * 65535).astype(np.uint16)), "PNG", compress_level=1)
    channels = [((x * 0.7 + y * 0.3) * 255).astype(np.uint8), ((x * 0.2 + y * 0.8) * 255).astype(np.uint8),
                np.broadcast_to(np.uint8(128), (height, width))]
    if mode == "RGBA":
        channels.append(((1 - x * y) * 255).astype(np.uint8))
    if mode in ("RGB", "RGBA"):
        array = np.dstack([np.broadcast_to(c, (height, width)) for c in channels])
        return encode(Image.fromarray(array, mode), "PNG", compress_level=1)
    assert mode == "RGB16"

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    row = np.empty((height, 1 + width * 6), dtype=np.uint8)
    if noise:
        row[:, 1:] = np.random.default_rng(0).integers(0, 256, (height, width * 6), dtype=np.uint8)
    else:
        pixels = row[:, 1:].reshape(height, width, 3, 2)
        for c, channel in enumerate(channels):
            pixels[:, :, c, 0] = channel  # high byte; low byte 0
            pixels[:, :, c, 1] = 0
    row[:, 0] = 0
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    compressor = zlib.compressobj(1)
    idat = compressor.compress(row.tobytes()) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
