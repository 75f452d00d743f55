"""Baked models: MODEL_DIR/org/name loads in place of hub id org/name, which stays the model's name
everywhere (`/v1/models`, `/info`, errors); anything else resolves as before."""

from __future__ import annotations

import os
import shutil

import pytest

from conftest import app_from
from embedding_service.bake import baked_path
from embedding_service.config.model_specs import EMBEDDED_DEFAULT, bundled_default_path, model_specs
from embedding_service.config.settings import Settings


def specs(**env) -> dict:
    return {spec.name: spec for spec in model_specs(Settings.from_mapping(env))}


def bake(model_dir, hub_id: str, source: str) -> str:
    """`source` copied where the bake step writes `hub_id` under `model_dir`."""
    target = os.path.join(str(model_dir), *hub_id.split("/"))
    shutil.copytree(source, target)
    return target


def test_a_baked_hub_id_loads_from_model_dir_under_its_hub_id(tmp_path, tiny):
    target = bake(tmp_path, "acme/tiny-bert", tiny["bert_cls"])
    found = specs(EMBEDDING_MODEL="acme/tiny-bert", MODELS="q=acme/not-baked", MODEL_DIR=str(tmp_path))
    assert found["acme/tiny-bert"].reference == target
    assert found["acme/not-baked"].reference == "acme/not-baked" and found["acme/not-baked"].aliases == ("q",)


def test_without_model_dir_a_hub_id_is_left_to_the_hub_cache(tmp_path, tiny):
    bake(tmp_path, "acme/tiny-bert", tiny["bert_cls"])
    assert specs(EMBEDDING_MODEL="acme/tiny-bert")["acme/tiny-bert"].reference == "acme/tiny-bert"


def test_local_paths_and_the_embedded_default_ignore_model_dir(tmp_path, tiny):
    # a folder named like a local path's pieces under MODEL_DIR must not capture the local path
    bake(tmp_path, "bert-cls", tiny["bert_cls"])
    found = specs(EMBEDDING_MODEL=tiny["bert_cls"], MODEL_DIR=str(tmp_path))
    assert [spec.reference for spec in found.values()] == [tiny["bert_cls"]]
    bake(tmp_path, EMBEDDED_DEFAULT, tiny["bert_cls"])
    assert specs(MODEL_DIR=str(tmp_path))[EMBEDDED_DEFAULT].reference == bundled_default_path()


@pytest.mark.parametrize("reference", ["/abs/path", "../up", "a/../b", "org/name/extra", "./here", "", "a b"])
def test_only_hub_ids_have_a_baked_path(reference):
    assert baked_path("/models", reference) is None


def test_baked_path_layout():
    assert baked_path("/models", "Qwen/Qwen3-Embedding-0.6B") == os.path.join("/models", "Qwen", "Qwen3-Embedding-0.6B")
    assert baked_path("/models", "bert-base-uncased") == os.path.join("/models", "bert-base-uncased")
    assert baked_path("", "Qwen/Qwen3-Embedding-0.6B") is None


def test_the_service_publishes_the_hub_id_never_the_folder(tmp_path, tiny):
    target = bake(tmp_path, "acme/tiny-bert", tiny["bert_cls"])
    client = app_from({"EMBEDDING_MODEL": "acme/tiny-bert", "MODEL_DIR": str(tmp_path)}).test_client()
    listed = client.get("/v1/models").get_json()["data"]
    assert [model["id"] for model in listed] == ["acme/tiny-bert"]
    info = client.get("/info").get_json()
    assert info["model_id"] == "acme/tiny-bert" and [m["id"] for m in info["models"]] == ["acme/tiny-bert"]
    resp = client.post("/v1/embeddings", json={"input": "hello", "model": "acme/tiny-bert"})
    assert resp.status_code == 200 and resp.get_json()["model"] == "acme/tiny-bert"
    missing = client.post("/v1/embeddings", json={"input": "hello", "model": "other"})
    assert missing.status_code == 404 and "acme/tiny-bert" in missing.get_data(as_text=True)
    for body in (listed, info, missing.get_data(as_text=True)):
        assert target not in str(body) and str(tmp_path) not in str(body)


def test_a_broken_baked_model_is_named_by_its_hub_id_at_start_up(tmp_path):
    from embedding_service.models.families import load_model
    from embedding_service.config.settings import SettingsError

    folder = tmp_path / "acme" / "broken"
    folder.mkdir(parents=True)
    (folder / "tokenizer.json").write_text("{}")
    (spec,) = model_specs(Settings.from_mapping({"EMBEDDING_MODEL": "acme/broken", "MODEL_DIR": str(tmp_path)}))
    assert spec.reference == str(folder)
    with pytest.raises(SettingsError) as failure:
        load_model(spec, "cpu", "auto")
    assert "'acme/broken'" in str(failure.value) and str(tmp_path) not in str(failure.value)
