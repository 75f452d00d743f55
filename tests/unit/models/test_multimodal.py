"""SigLIP 2, SigLIP and CLIP: parity with get_image_features / get_text_features, every image
input form giving the same vector, every decoder mode, and the SigLIP service API's routes."""

from __future__ import annotations

import base64
import io
import os
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

from support.image_files import ImageServer, data_uri, encode, exif_rotated_jpeg, picture, sample_files
from embedding_service.images.decode import to_rgb

TEXTS = ["A photo of a Cat", "two dogs playing in the snow", "Ünïcödé and 中文", "word " * 100]


def unit(rows) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def features(output) -> torch.Tensor:
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def reference_images(path: str, images: list[Image.Image]) -> np.ndarray:
    processor = AutoImageProcessor.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    with torch.no_grad():
        out = features(model.get_image_features(**processor(images=images, return_tensors="pt")))
    return F.normalize(out, dim=-1).numpy()


def reference_texts(path: str, family: str, texts: list[str]) -> np.ndarray:
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    with torch.no_grad():
        if family == "clip":
            batch = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
            out = model.get_text_features(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        else:  # SigLIP recipe: lower-cased, padded to 64, no attention mask
            batch = tokenizer([t.lower() for t in texts], padding="max_length", max_length=64, truncation=True, return_tensors="pt")
            out = model.get_text_features(input_ids=batch["input_ids"])
    return F.normalize(features(out), dim=-1).numpy()


@pytest.mark.parametrize("name", ["siglip2", "siglip", "clip"])
def test_image_and_text_parity(mm_client, multimodal, name):
    pictures = [picture(48, 32, seed=1), picture(20, 60, seed=2), picture(64, 64, seed=3)]
    resp = mm_client.post("/embed", json={"model": name, "images": [data_uri(encode(p, "PNG")) for p in pictures]})
    assert resp.status_code == 200, resp.get_json()
    ours = np.array(resp.get_json(), dtype=np.float32)
    expected = reference_images(multimodal[name], pictures)
    assert (unit(ours) * expected).sum(axis=1).min() >= 0.99999
    text = mm_client.post("/v1/embeddings", json={"model": name, "input": TEXTS}).get_json()
    ours_text = np.array([row["embedding"] for row in text["data"]], dtype=np.float32)
    assert (unit(ours_text) * reference_texts(multimodal[name], name, TEXTS)).sum(axis=1).min() >= 0.99999
    assert ours.shape[1] == ours_text.shape[1]


def test_siglip_text_is_lowercased_and_padded_not_to_longest(mm_client, multimodal):
    upper = np.array(mm_client.post("/embed_text", json={"text": "A PHOTO OF A CAT"}).get_json())
    lower = np.array(mm_client.post("/embed_text", json={"text": "a photo of a cat"}).get_json())
    np.testing.assert_allclose(upper, lower, atol=1e-6)
    # Padding to the longest would change SigLIP's vector (the last position is pooled).
    tokenizer = AutoTokenizer.from_pretrained(multimodal["siglip2"])
    model = AutoModel.from_pretrained(multimodal["siglip2"]).eval()
    with torch.no_grad():
        short = features(model.get_text_features(**{"input_ids": tokenizer(["a photo of a cat"], return_tensors="pt")["input_ids"]}))
    assert (unit(lower) * unit(short.numpy())).sum() < 0.99999


def test_embed_text_uses_model_name_text_tower(mm_client):
    native = mm_client.post("/embed_text", json={"texts": ["a cat"]}).get_json()
    siglip2 = mm_client.post("/v1/embeddings", json={"input": ["a cat"], "model": "siglip2"}).get_json()
    np.testing.assert_allclose(native[0], siglip2["data"][0]["embedding"], atol=1e-6)
    default = mm_client.post("/v1/embeddings", json={"input": ["a cat"]}).get_json()
    assert default["model"] == "sentence-transformers/all-MiniLM-L6-v2"  # the text kind's default
    health = mm_client.get("/health").get_json()
    assert health["model"] == "siglip2"


def test_image_vectors_share_the_text_space(mm_client):
    images = mm_client.post("/embed", json={"images": [data_uri(encode(picture(), "PNG"))]}).get_json()
    texts = mm_client.post("/embed_text", json={"texts": ["a cat"]}).get_json()
    assert len(images[0]) == len(texts[0]) == 32


def test_every_input_form_gives_the_same_vector(mm_client, image_settings, tmp_path):
    png = encode(picture(seed=5), "PNG")
    (tmp_path / "pic.png").write_bytes(png)
    server = ImageServer(png)
    try:
        image_settings(image_allow_private_urls=True, image_local_dirs=(os.path.realpath(tmp_path),))
        sources = [
            data_uri(png),
            base64.b64encode(png).decode(),
            f"{server.url}/image.png",
            str(tmp_path / "pic.png"),
        ]
        resp = mm_client.post("/embed", json={"images": sources})
        assert resp.status_code == 200, resp.get_json()
        vectors = np.array(resp.get_json())
        upload = mm_client.post(
            "/embed", data={"file": (io.BytesIO(png), "pic.png")}, content_type="multipart/form-data"
        )
        assert upload.status_code == 200, upload.get_json()
        vectors = np.vstack([vectors, upload.get_json()])
        assert np.abs(vectors - vectors[0]).max() <= 1e-6
        openai = mm_client.post("/v1/embeddings", json={"input": sources[0], "modality": "image"}).get_json()
        np.testing.assert_allclose(openai["data"][0]["embedding"], vectors[0], atol=1e-6)
        assert openai["model"] == "siglip2"
    finally:
        server.close()


def test_every_format_and_mode_decodes(mm_client):
    files = sample_files()
    resp = mm_client.post("/embed", json={"images": [data_uri(data) for data in files.values()]})
    assert resp.status_code == 200, resp.get_json()
    vectors = np.array(resp.get_json())
    assert vectors.shape == (len(files), 32) and np.isfinite(vectors).all()
    # Alpha is composited onto white, as transformers' convert_to_rgb does.
    rgba = Image.open(io.BytesIO(files["png_alpha"]))
    assert rgba.getpixel((0, 0))[3] == 0 and rgba.getpixel((0, 31))[3] == 255
    flat = to_rgb(rgba)
    assert flat.getpixel((0, 0)) == (255, 255, 255) and flat.getpixel((0, 31)) == rgba.getpixel((0, 31))[:3]
    # 16-bit greyscale keeps its range (scaled to 8 bits, not clipped to white).
    grey = to_rgb(Image.open(io.BytesIO(files["png16"])))
    assert grey.getpixel((0, 0))[0] < 5 and grey.getpixel((47, 31))[0] > 250


def test_exif_rotated_jpeg_embeds_like_its_upright_twin(mm_client):
    upright = picture(48, 32, seed=7)
    files = {"upright": encode(upright, "JPEG", quality=100), "exif": exif_rotated_jpeg(upright)}
    files["sideways"] = encode(upright.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=100)
    vectors = unit(mm_client.post("/embed", json={"images": [data_uri(v, "image/jpeg") for v in files.values()]}).get_json())
    same = float(vectors[0] @ vectors[1])
    sideways = float(vectors[0] @ vectors[2])
    assert same >= 0.9999 and same > sideways


def test_images_are_batch_invariant(mm_client):
    one = picture(30, 40, seed=9)
    alone = np.array(mm_client.post("/embed", json={"images": [data_uri(encode(one, "PNG"))]}).get_json())
    others = [data_uri(encode(picture(64, 16, seed=s), "PNG")) for s in range(3)]
    mixed = np.array(mm_client.post("/embed", json={"images": others[:2] + [data_uri(encode(one, "PNG"))] + others[2:]}).get_json())
    assert np.abs(alone[0] - mixed[2]).max() <= 1e-5


def test_images_are_fetched_concurrently(mm_client, image_settings):
    server = ImageServer(encode(picture(), "PNG"))
    try:
        image_settings(image_allow_private_urls=True)
        started = time.monotonic()
        resp = mm_client.post("/embed", json={"images": [f"{server.url}/delay.png"] * 4})
        elapsed = time.monotonic() - started
        assert resp.status_code == 200
        assert elapsed < 1.5, f"4 downloads of 0.5 s each took {elapsed:.2f}s: not concurrent"
    finally:
        server.close()


def test_one_bad_image_fails_the_request_with_its_index(mm_client):
    good = data_uri(encode(picture(), "PNG"))
    resp = mm_client.post("/embed", json={"images": [good, good, "data:image/png;base64,!!!notbase64"]})
    assert resp.status_code == 400
    err = resp.get_json()["error"]
    assert err["message"].startswith("images[2]: ") and err["param"] == "images"
    assert mm_client.post("/embed", json={"images": [good]}).status_code == 200


def test_bare_base64_jpeg_is_not_mistaken_for_a_path(mm_client):
    jpeg = encode(picture(), "JPEG", quality=95)
    bare = base64.b64encode(jpeg).decode()
    assert bare.startswith("/9j/")  # looks like an absolute path
    by_bare = mm_client.post("/embed", json={"images": [bare]})
    by_uri = mm_client.post("/embed", json={"images": [data_uri(jpeg, "image/jpeg")]})
    assert by_bare.status_code == 200, by_bare.get_json()
    np.testing.assert_allclose(by_bare.get_json(), by_uri.get_json(), atol=1e-6)


def test_max_num_patches_option_follows_the_processor(multimodal):
    from conftest import load_registry
    from embedding_service.config.settings import Settings

    registry = load_registry(Settings.from_mapping({"MODELS": f"s2={multimodal['siglip2']};max_num_patches=4"}), warmup=False)
    engine = registry.first
    assert engine.info()["max_num_patches"] == 4
    image = picture(40, 24, seed=11)
    ours = engine.embed_images([image]).vectors
    processor = AutoImageProcessor.from_pretrained(multimodal["siglip2"], max_num_patches=4)
    reference = AutoModel.from_pretrained(multimodal["siglip2"]).eval()
    with torch.no_grad():
        expected = features(reference.get_image_features(**processor(images=[image], return_tensors="pt"))).numpy()
    assert (unit(ours) * unit(expected)).sum() >= 0.99999
    default = load_registry(Settings.from_mapping({"MODELS": f"s2={multimodal['siglip2']}"}), warmup=False)
    assert default.first.info()["max_num_patches"] == 16  # from the saved processor config
