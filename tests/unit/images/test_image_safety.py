"""Image inputs that must be refused: SSRF, endless and slow downloads, decompression bombs,
broken and foreign files, path escapes. Each is followed by a good request that succeeds."""

from __future__ import annotations

import io
import os
import resource
import time

import pytest

import embedding_service.images.fetch as fetch
from support.image_files import ImageServer, bomb_png, data_uri, encode, picture

GOOD = data_uri(encode(picture(), "PNG"))


def post_images(client, images):
    return client.post("/embed", json={"images": images})


def expect(resp, status: int, fragment: str = ""):
    assert resp.status_code == status, resp.get_json()
    err = resp.get_json()["error"]
    assert err["code"] == status and err["param"] == "images"
    assert fragment.lower() in err["message"].lower(), err["message"]
    return err


def still_serving(client):
    resp = post_images(client, [GOOD])
    assert resp.status_code == 200 and len(resp.get_json()[0]) == 32


@pytest.fixture()
def server():
    srv = ImageServer(encode(picture(), "PNG"))
    yield srv
    srv.close()


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:{port}/image.png", "http://169.254.169.254/latest/meta-data/", "http://[::1]:{port}/image.png",
     "http://10.0.0.1/image.png", "http://localhost:{port}/image.png", "http://[::ffff:127.0.0.1]:{port}/image.png"],
)
def test_private_addresses_refused_without_connecting(mm_client, server, url):
    started = time.monotonic()
    resp = post_images(mm_client, [url.format(port=server.httpd.server_port)])
    expect(resp, 403, "IMAGE_ALLOW_PRIVATE_URLS")
    assert time.monotonic() - started < 1.0
    assert server.connections == 0
    still_serving(mm_client)


def test_redirect_to_private_host_refused(mm_client, image_settings, monkeypatch):
    # 127.0.0.2 plays a public host (the sandbox reaches no real one); 127.0.0.1 stays private.
    public = ImageServer(encode(picture(), "PNG"), host="127.0.0.2")
    private = ImageServer(encode(picture(), "PNG"))
    real = fetch.is_public
    monkeypatch.setattr(fetch, "is_public", lambda address: address == "127.0.0.2" or real(address))
    try:
        ok = post_images(mm_client, [f"{public.url}/image.png"])
        assert ok.status_code == 200  # the stand-in public host itself is fine
        resp = post_images(mm_client, [f"{public.url}/redirect?to={private.url}/image.png"])
        expect(resp, 403, "private")
        assert private.connections == 0
    finally:
        public.close()
        private.close()
    still_serving(mm_client)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/cat.png", "gopher://example.com/x"])
def test_other_schemes_are_400(mm_client, url):
    expect(post_images(mm_client, [url]), 400, "scheme")
    still_serving(mm_client)


def test_endless_body_stops_at_the_byte_cap(mm_client, image_settings, server):
    image_settings(image_allow_private_urls=True, image_max_bytes=256 * 1024)
    started = time.monotonic()
    expect(post_images(mm_client, [f"{server.url}/endless"]), 413, "IMAGE_MAX_BYTES")
    assert time.monotonic() - started < 3
    started = time.monotonic()
    resp = post_images(mm_client, [f"{server.url}/liar"])  # claims 100 bytes, sends megabytes
    assert resp.status_code in (413, 415, 422)  # only the 100 claimed bytes are read
    assert time.monotonic() - started < 3
    still_serving(mm_client)


def test_slow_server_times_out_within_deadline(mm_client, image_settings, server):
    image_settings(image_allow_private_urls=True, image_fetch_timeout=1.0)
    started = time.monotonic()
    expect(post_images(mm_client, [f"{server.url}/slow"]), 422, "IMAGE_FETCH_TIMEOUT")
    assert time.monotonic() - started <= 2.0
    still_serving(mm_client)


def test_http_error_status_is_422(mm_client, image_settings, server):
    image_settings(image_allow_private_urls=True)
    expect(post_images(mm_client, [f"{server.url}/missing"]), 422, "HTTP 404")
    still_serving(mm_client)


def test_host_allow_list(mm_client, image_settings, server):
    image_settings(image_allow_private_urls=True, image_url_allowed_hosts=("images.example.com",))
    expect(post_images(mm_client, [f"{server.url}/image.png"]), 403, "IMAGE_URL_ALLOWED_HOSTS")
    assert server.connections == 0
    still_serving(mm_client)


def test_decompression_bomb_is_413_without_decoding(mm_client):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    err = expect(post_images(mm_client, [data_uri(bomb_png())]), 413, "20000x20000")
    assert "IMAGE_MAX_PIXELS" in err["message"]
    assert time.monotonic() - started < 1.0
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 100  # 20000x20000 RGB would be 1.1 GiB
    still_serving(mm_client)


def test_truncated_jpeg_is_422(mm_client):
    jpeg = encode(picture(256, 256), "JPEG", quality=95)
    expect(post_images(mm_client, [data_uri(jpeg[: len(jpeg) // 2], "image/jpeg")]), 422, "truncated")
    still_serving(mm_client)


@pytest.mark.parametrize(
    "payload,name",
    [
        (b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n" * 4, "PDF"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>', "SVG"),
        (encode(picture(), "TIFF"), "TIFF"),
    ],
)
def test_foreign_formats_are_415(mm_client, payload, name):
    expect(post_images(mm_client, [data_uri(payload)]), 415, name)
    still_serving(mm_client)


def test_bad_base64_is_400(mm_client):
    expect(post_images(mm_client, ["data:image/png;base64,@@@@"]), 400, "base64")
    expect(post_images(mm_client, ["A" * 65]), 400, "base64")  # no base64 string has length 4k+1
    still_serving(mm_client)


def test_local_paths_refused_without_allowed_folders(mm_client, tmp_path):
    path = tmp_path / "pic.png"
    path.write_bytes(encode(picture(), "PNG"))
    expect(post_images(mm_client, [str(path)]), 403, "IMAGE_LOCAL_DIRS")
    still_serving(mm_client)


def test_local_path_escapes_are_403(mm_client, image_settings, tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "ok.png").write_bytes(encode(picture(), "PNG"))
    secret = tmp_path / "secret.png"
    secret.write_bytes(encode(picture(seed=3), "PNG"))
    os.symlink(secret, allowed / "link.png")
    os.symlink(tmp_path, allowed / "dirlink")
    image_settings(image_local_dirs=(os.path.realpath(allowed),))
    assert post_images(mm_client, [str(allowed / "ok.png")]).status_code == 200
    escapes = [
        f"{allowed}/../secret.png",
        f"{allowed}/%2e%2e/secret.png",
        f"{allowed}%2F..%2Fsecret.png",
        str(allowed / "link.png"),
        str(allowed / "dirlink" / "secret.png"),
        "/etc/passwd",
        "relative/ok.png",
    ]
    for path in escapes:
        expect(post_images(mm_client, [path]), 403)
    expect(post_images(mm_client, [str(allowed)]), 403, "regular file")
    still_serving(mm_client)


def test_multipart_upload_limits(mm_client):
    resp = mm_client.post(
        "/embed", data={"file": (io.BytesIO(b"%PDF-1.4 not an image" * 10), "doc.pdf")}, content_type="multipart/form-data"
    )
    expect(resp, 415, "PDF")
    resp = mm_client.post("/embed", data={"colour": "red"}, content_type="multipart/form-data")
    assert resp.status_code == 400 and resp.get_json()["error"]["param"] == "colour"
    still_serving(mm_client)
