"""Per-request image budgets and bounded memory: IMAGE_MAX_REQUEST_PIXELS (from headers, before any
decoding), IMAGE_MAX_URLS (before any connection), IMAGE_FETCH_DEADLINE (one deadline for all of a
request's URLs, without holding up other requests), cancellation of a failed request's other
images, images shrunk toward the model's input size as they decode, 16-bit images converted
without a float copy, the status of strings that are no image at all, and the RSS of a real server
process for the largest request the default budgets allow."""

from __future__ import annotations

import base64
import io
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest
import requests
from PIL import Image, ImageFile

from conftest import free_port
from support.servers import wait_healthy
from support.image_files import ImageServer, SilentServer, bomb_png, data_uri, encode, large_png, picture, sixteen_bit_png
from embedding_service.images import decode

from support.paths import ROOT  # noqa: E402
from support.errors import expect_error  # noqa: E402
GOOD = data_uri(encode(picture(), "PNG"))
FORMS = ("data URI", "base64", "http(s) URL", "IMAGE_LOCAL_DIRS")


def post_images(client, images):
    return client.post("/embed", json={"images": images})


def expect(resp, status: int, *fragments: str) -> str:
    assert resp.status_code == status, resp.get_json()
    err = resp.get_json()["error"]
    assert err["code"] == status and err["param"] == "images"
    for fragment in fragments:
        assert fragment in err["message"], err["message"]
    return err["message"]


@pytest.fixture()
def decodes(monkeypatch):
    """Counts pixel decodes (Pillow's ImageFile.load, which PNG, JPEG, GIF and BMP use)."""
    calls = []
    real = ImageFile.ImageFile.load

    def load(self):
        if self.tile:  # not decoded yet (Pillow empties `tile` once it has)
            calls.append(self.size)
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return calls


def test_request_pixel_budget_is_413_before_any_decoding(mm_client, image_settings, decodes):
    # Default budget (100000000): three 6000x6000 headers (36M pixels each, under IMAGE_MAX_PIXELS).
    message = expect(post_images(mm_client, [data_uri(bomb_png(6000, 6000))] * 3), 413,
                     "images[2]: ", "108000000 pixels", "at most 100000000 pixels per request (IMAGE_MAX_REQUEST_PIXELS)")
    assert "IMAGE_MAX_PIXELS)" not in message
    # A small budget: the second 64x64 image passes it; nothing is decoded.
    image_settings(image_max_request_pixels=5000)
    png = data_uri(encode(picture(64, 64), "PNG"))
    expect(post_images(mm_client, [png, png, png]), 413, "images[1]: ", "8192 pixels", "at most 5000 pixels", "IMAGE_MAX_REQUEST_PIXELS")
    assert decodes == []
    assert post_images(mm_client, [png]).status_code == 200  # 4096 pixels fit
    assert len(decodes) == 1


def test_more_urls_than_the_budget_is_413_without_connecting(mm_client, image_settings):
    server = ImageServer(encode(picture(), "PNG"))
    try:
        image_settings(image_allow_private_urls=True, image_max_urls=3)
        url = f"{server.url}/image.png"
        expect(post_images(mm_client, [GOOD, url, url, url, url]), 413,
               "images[4]: ", "4 image URLs", "at most 3 image URLs per request (IMAGE_MAX_URLS)")
        assert server.connections == 0
        assert post_images(mm_client, [url] * 3).status_code == 200
        assert server.connections == 3
    finally:
        server.close()


def test_fetch_deadline_ends_the_request_and_spares_other_requests(mm_app, image_settings):
    silent = SilentServer()
    try:
        # IMAGE_FETCH_TIMEOUT alone would hold each of these 8 fetches for 4 s.
        image_settings(image_allow_private_urls=True, image_fetch_timeout=4.0, image_fetch_deadline=1.0)
        result = {}

        def hung_request():
            started = time.monotonic()
            result["resp"] = post_images(mm_app.test_client(), [f"{silent.url}/{i}.png" for i in range(8)])
            result["seconds"] = time.monotonic() - started

        thread = threading.Thread(target=hung_request)
        thread.start()
        time.sleep(0.3)
        started = time.monotonic()
        other = post_images(mm_app.test_client(), [GOOD])
        assert other.status_code == 200 and time.monotonic() - started < 2.0
        thread.join(timeout=10)
        assert not thread.is_alive()
        expect(result["resp"], 422, "within 1s (IMAGE_FETCH_DEADLINE)")
        assert result["seconds"] < 2.0, result["seconds"]
        assert silent.connections <= 4  # a request fetches a quarter of IMAGE_FETCH_WORKERS at a time
    finally:
        silent.close()


def test_one_failing_image_cancels_the_other_fetches(mm_client, image_settings):
    server = ImageServer(encode(picture(), "PNG"))
    try:
        image_settings(image_allow_private_urls=True)
        started = time.monotonic()
        resp = post_images(mm_client, [f"{server.url}/missing"] + [f"{server.url}/delay.png"] * 11)
        expect(resp, 422, "images[0]: ", "HTTP 404")
        assert time.monotonic() - started < 1.0  # not waiting for the 0.5 s downloads (12 of them, 2 at a time)
        time.sleep(1.2)  # long enough for any fetch still queued to reach the server
        assert server.connections <= 3, server.connections
    finally:
        server.close()


def test_one_failing_image_cancels_the_other_decodes(mm_client, decodes, monkeypatch):
    # The good images' decodes wait until the truncated one has failed, so the test does not
    # depend on which thread the scheduler runs first: only those already in the request's
    # window (half the decode threads) may have started.
    failed = threading.Event()
    counted = ImageFile.ImageFile.load

    def load(self):
        if self.size == (256, 256):
            try:
                return counted(self)
            except OSError:
                failed.set()
                raise
        failed.wait(5)
        return counted(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    truncated = encode(picture(256, 256), "PNG")[:400]
    images = [data_uri(truncated)] + [data_uri(encode(picture(300, 300, seed=s), "PNG")) for s in range(30)]
    expect(post_images(mm_client, images), 422, "images[0]: ", "truncated")
    assert failed.is_set()
    time.sleep(0.3)
    assert 1 <= len(decodes) <= 4, decodes  # the request's window of 4 (8 decode threads / 2), not all 31


def test_large_images_are_shrunk_toward_the_model_input_as_they_decode(multimodal, mm_app):
    engine = mm_app.extensions["embedding_service"].engines.find("siglip2")
    size = engine.model.image_input_size
    assert isinstance(size, decode.ImageInputSize)
    target = size.resized(3000, 2000)
    for data in (encode(picture(3000, 2000), "PNG"), encode(picture(3000, 2000), "JPEG", quality=90)):
        image = decode.decode_image(data, 40_000_000, size)
        assert image.mode == "RGB"
        # at least 3x what the processor resizes to, at most a few times more, same processor geometry
        assert 3 * target[0] <= image.size[0] < 12 * target[0] and 3 * target[1] <= image.size[1] < 12 * target[1]
        assert size.resized(*image.size) == target
    assert decode.reduction(40, 30, size) == (1, 1)  # small images are left as they are
    # The shrunk image embeds like the full one (the model's processor does the rest).
    full = decode.decode_image(encode(picture(3000, 2000), "PNG"), 40_000_000)
    small = decode.decode_image(encode(picture(3000, 2000), "PNG"), 40_000_000, size)
    a, b = engine.embed_images([full]).vectors[0], engine.embed_images([small]).vectors[0]
    assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) >= 0.9999


def test_nul_in_a_path_is_400(mm_client, image_settings, tmp_path):
    image_settings(image_local_dirs=(os.path.realpath(tmp_path),))
    for path in (f"{tmp_path}/pic\x00.png", f"{tmp_path}/pic%00.png"):
        expect(post_images(mm_client, [path]), 400, "images[0]: ", "NUL", *FORMS)
    expect(post_images(mm_client, [GOOD, "/data/\x00"]), 400, "images[1]: ", "NUL")


@pytest.mark.parametrize("text", ["hello world", "not-an-image", "QUJD", "javascript:alert(1)"])
def test_a_string_that_is_no_accepted_form_is_400_naming_the_forms(mm_client, text):
    expect(post_images(mm_client, [text]), 400, "images[0]: ", *FORMS)


def test_short_base64_of_a_pdf_is_415_and_real_looking_paths_stay_403(mm_client):
    short_pdf = base64.b64encode(b"%PDF-1.4\n%%EOF\n").decode()
    assert len(short_pdf) < 64
    expect(post_images(mm_client, [short_pdf]), 415, "images[0]: ", "PDF")
    for path in ("/etc/passwd", "photos/cat.jpg", "cat.jpg"):
        expect(post_images(mm_client, [path]), 403, "IMAGE_LOCAL_DIRS")


def test_rerank_image_errors_name_the_document(mm_client):
    resp = mm_client.post("/rerank", json={"query": "a cat", "documents": ["a cat", "a dog", {"image": "hello world"}]})
    message = expect_error(resp, 400, "documents", style="cohere")  # Cohere's rerank request, Cohere's body
    assert message.startswith("documents[2]: "), message


def old_to_rgb_sixteen(image: Image.Image) -> Image.Image:
    """The conversion before: a float64 copy of the whole image, / 257, rounded, clipped."""
    array = np.asarray(image, dtype=np.float64)
    return Image.fromarray(np.clip(np.round(array / 257.0), 0, 255).astype(np.uint8), "L").convert("RGB")


def test_sixteen_bit_conversion_is_unchanged_and_has_no_float_copy():
    every_value = Image.fromarray(np.arange(65536, dtype=np.uint16).reshape(256, 256))
    assert every_value.mode == "I;16"
    assert decode.to_rgb(every_value).tobytes() == old_to_rgb_sixteen(every_value).tobytes()
    png = sixteen_bit_png()
    expected = old_to_rgb_sixteen(Image.open(io.BytesIO(png))).tobytes()
    assert decode.decode_image(png, 40_000_000).tobytes() == expected
    # 2000x2000 16-bit: the float64 copy alone was 8 bytes a pixel (and 3 more of them as big, briefly);
    # the 8-bit path reads the 16-bit pixels (2 bytes, twice while Pillow joins them) into 1 byte each.
    big = Image.fromarray((np.arange(2000 * 2000, dtype=np.uint32) % 65536).astype(np.uint16).reshape(2000, 2000))
    big.load()
    tracemalloc.start()
    try:
        decode.to_rgb(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6 * 2000 * 2000, peak


# ---------------------------------------------------------------- a real server's RSS
def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def peak_during(pid: int, send) -> tuple[int, object]:
    """(VmHWM growth in MiB over the VmRSS before, the result of send()): the peak is reset first."""
    with open(f"/proc/{pid}/clear_refs", "w") as handle:
        handle.write("5")  # VmHWM := VmRSS
    before = status_kib(pid, "VmRSS")
    result = send()
    return (status_kib(pid, "VmHWM") - before) // 1024, result


@pytest.mark.slow
def test_budget_maximum_request_keeps_a_server_under_a_gigabyte(multimodal, tmp_path):
    port = free_port()
    env = dict(os.environ, PORT=str(port), HOST="127.0.0.1", DEVICE="cpu", LOG_LEVEL="WARNING",
               MODEL_NAME=multimodal["siglip2"], IMAGE_ALLOW_PRIVATE_URLS="true", HF_HUB_OFFLINE="1")
    for name in ("MODELS", "EMBEDDING_MODEL", "RERANK_MODEL"):
        env.pop(name, None)
    log = open(tmp_path / "server.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "embedding_service"], cwd=ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    # 100000000 pixels: 40M of 16-bit greyscale, 40M of RGBA, 20M of 16-bit RGB (each at most IMAGE_MAX_PIXELS).
    inline = [data_uri(large_png(8000, 5000, "I;16")), data_uri(large_png(8000, 5000, "RGBA")),
              data_uri(large_png(5000, 4000, "RGB16"))]
    # 1800x1800 random 16-bit RGB: 19.4 MB (under IMAGE_MAX_BYTES), 3.24M pixels: 16 of them fit the budget.
    images = ImageServer(large_png(1800, 1800, "RGB16", noise=True))
    try:
        wait_healthy(url, proc, seconds=120)
        assert requests.post(f"{url}/embed", json={"images": [GOOD]}, timeout=30).status_code == 200
        grown, resp = peak_during(proc.pid, lambda: requests.post(f"{url}/embed", json={"images": inline}, timeout=300))
        assert resp.status_code == 200, resp.text
        print(f"\nthree PNGs, 100000000 pixels: VmHWM {grown} MiB over VmRSS")
        assert grown < 1024, f"{grown} MiB"
        urls = [f"{images.url}/image.png"] * 16
        grown, resp = peak_during(proc.pid, lambda: requests.post(f"{url}/embed", json={"images": urls}, timeout=300))
        assert resp.status_code == 200, resp.text
        print(f"one 19 MB PNG by URL 16 times: VmHWM {grown} MiB over VmRSS")
        assert grown < 1024, f"{grown} MiB"
    finally:
        images.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        log.close()
