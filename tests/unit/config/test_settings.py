"""Configuration: defaults, older variable names, bad values failing at start-up with the
variable's name, the MODELS grammar, and device slots for Gunicorn workers."""

from __future__ import annotations

import pytest

from support.paths import ROOT
from embedding_service.config.devices import SlotPool, device_list, visible_gpu_count, worker_count
from embedding_service.config.model_specs import EMBEDDED_DEFAULT, model_specs
from conftest import load_registry
from embedding_service.config.settings import Settings, SettingsError


def test_defaults():
    s = Settings.from_mapping({})
    assert (s.host, s.port, s.max_client_batch_size, s.device, s.batch_timeout_ms) == ("0.0.0.0", 8080, 2048, "auto", 0.0)
    specs = model_specs(s)
    assert [spec.name for spec in specs] == [EMBEDDED_DEFAULT]
    assert specs[0].aliases == ("all-MiniLM-L6-v2",)
    assert specs[0].reference.endswith("model")  # the bundled directory, not a hub download


@pytest.mark.parametrize(
    "env,variable",
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"WORKERS": "-1"}, "WORKERS"),
        ({"DTYPE": "float8"}, "DTYPE"),
        ({"DEVICE": "tpu"}, "DEVICE"),
        ({"DEVICES": "cuda:0,gpu1"}, "DEVICES"),
        ({"MAX_BATCH_SIZE": "0"}, "MAX_BATCH_SIZE"),
        ({"BATCH_TIMEOUT": "soon"}, "BATCH_TIMEOUT"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"IMAGE_LOCAL_DIRS": "/no/such/folder"}, "IMAGE_LOCAL_DIRS"),
        ({"IMAGE_FETCH_TIMEOUT": "0"}, "IMAGE_FETCH_TIMEOUT"),
        ({"IMAGE_ALLOW_PRIVATE_URLS": "maybe"}, "IMAGE_ALLOW_PRIVATE_URLS"),
        ({"RATE_LIMIT_STORAGE_URI": "mongodb://x"}, "RATE_LIMIT_STORAGE_URI"),
        ({"RATE_LIMIT_WINDOW": "0"}, "RATE_LIMIT_WINDOW"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
    ],
)
def test_bad_values_name_the_variable(env, variable):
    with pytest.raises(SettingsError) as info:
        Settings.from_mapping(env)
    assert str(info.value).startswith(f"{variable}=")


def test_api_keys_merge_and_stay_secret():
    s = Settings.from_mapping({"API_KEY": "alpha", "API_KEYS": "beta, gamma"})
    assert [k.get_secret_value() for k in s.api_keys] == ["alpha", "beta", "gamma"]
    assert "alpha" not in repr(s)


def test_older_names_and_env_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=9000\nBATCH_TIMEOUT=0.1\nMAX_BATCH_SIZE=16\n")
    s = Settings.from_env(environ={"MAX_BATCH_SIZE": "64"}, env_file=str(env_file))
    assert s.port == 9000 and s.batch_timeout_ms == pytest.approx(100.0) and s.max_batch_size == 64


def test_models_grammar(tmp_path):
    local = tmp_path / "my-model"
    local.mkdir()
    (tmp_path / "my-model2").mkdir()
    s = Settings.from_mapping(
        {
            "MODEL_NAME": "all-MiniLM-L6-v2",
            "MODELS": f"bge=BAAI/bge-m3;pooling=cls;max_length=512,local={local},{local}2",
        }
    )
    specs = model_specs(s)
    assert [x.name for x in specs] == [EMBEDDED_DEFAULT, "BAAI/bge-m3", "local", "my-model2"]
    assert specs[1].aliases == ("bge",) and specs[1].options == {"pooling": "cls", "max_length": 512}
    assert specs[2].reference == str(local)  # known by its alias, never by the server path
    as_json = Settings.from_mapping({"MODELS": '[{"reference": "BAAI/bge-m3", "aliases": ["bge"], "pooling": "cls"}]'})
    assert model_specs(as_json)[0].options == {"pooling": "cls"}


@pytest.mark.parametrize(
    "models,fragment",
    [
        ("BAAI/bge-m3;pooling=weird", "option pooling='weird'"),
        ("BAAI/bge-m3;colour=red", "unknown option 'colour'"),
        ("BAAI/bge-m3;max_length=-3", "positive integer"),
        ("a=BAAI/bge-m3,a=BAAI/bge-large-zh", "used by both"),
        ("[{\"name\": \"x\"}]", "reference"),
    ],
)
def test_bad_models_fail_at_startup(models, fragment):
    with pytest.raises(SettingsError) as info:
        model_specs(Settings.from_mapping({"MODELS": models}))
    assert fragment in str(info.value)


def test_unloadable_model_names_itself(tmp_path):
    with pytest.raises(SettingsError) as info:
        load_registry(Settings.from_mapping({"EMBEDDING_MODEL": str(tmp_path)}))
    assert "no config.json" in str(info.value)


def test_contradictory_pooling_config_fails(tmp_path, tiny):
    import json
    import shutil

    path = tmp_path / "two-poolings"
    shutil.copytree(tiny["bert_cls"], path)
    (path / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True})
    )
    with pytest.raises(SettingsError) as info:
        load_registry(Settings.from_mapping({"MODELS": f"two={path}"}))
    assert "'two'" in str(info.value) and "2 modes" in str(info.value)
    # An explicit pooling option resolves the contradiction.
    registry = load_registry(Settings.from_mapping({"MODELS": f"two={path};pooling=mean"}), warmup=False)
    assert registry.first.info()["pooling"] == "mean"


def test_device_list_and_slots(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpu_count() == 0
    assert device_list(Settings.from_mapping({})) == ["cpu"]
    with pytest.raises(SettingsError):
        device_list(Settings.from_mapping({"DEVICE": "cuda"}))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    devices = device_list(Settings.from_mapping({}))
    assert devices == ["cuda:0", "cuda:1"]
    assert worker_count(Settings.from_mapping({}), devices) == 2
    assert worker_count(Settings.from_mapping({}), ["cpu"]) >= 2
    assert worker_count(Settings.from_mapping({"WORKERS": "3"}), ["cpu"]) == 3
    pool = SlotPool(["cuda:0", "cuda:1"], 4)  # two workers per GPU
    slots = [pool.acquire() for _ in range(4)]
    assert [pool.device(s) for s in slots] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    pool.release(1)
    assert pool.acquire() == 1  # a restarted worker gets the slot (and GPU) it replaces
    with pytest.raises(RuntimeError):
        pool.acquire()


def read_configuration_page() -> str:
    """docs/configuration.md, the documentation's Configuration page."""
    import os

    with open(os.path.join(ROOT, "docs", "configuration.md"), encoding="utf-8") as handle:
        return handle.read()


def read_docs() -> str:
    """Every page of docs/, concatenated."""
    import glob
    import os

    return "".join(open(path, encoding="utf-8").read() for path in sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True)))


def test_the_configuration_page_lists_every_variable():
    from embedding_service.config.settings import SECONDS_ALIASES, SINGLE_KEY
    from embedding_service.config.settings_docs import EXTERNAL_ENV, env_table, known_env_names

    readme = read_docs()
    names = [name for row in env_table() for name in (row.name, *row.aliases)] + [*EXTERNAL_ENV]
    assert set(names) == known_env_names() and {*SECONDS_ALIASES, SINGLE_KEY} <= set(names)
    assert [n for n in names if f"`{n}`" not in readme] == []


def test_the_configuration_table_is_generated_from_the_declaration():
    """The Configuration page's table is `python -m embedding_service.config.settings_docs --markdown`, verbatim."""
    from embedding_service.config.settings_docs import markdown_table

    section = read_configuration_page().split("# Configuration\n", 1)[1].split("\n## ", 1)[0]
    table = "".join(line + "\n" for line in section.splitlines() if line.startswith("|"))
    assert table == markdown_table()


def test_each_setting_declared_once_on_its_field():
    from pydantic import AliasChoices, Field

    from embedding_service.config.settings import SECONDS_ALIASES, SINGLE_KEY
    from embedding_service.config.settings_docs import env_table

    rows = list(env_table())
    assert [row.name for row in rows] == [name.upper() for name in Settings.model_fields]
    assert all(row.description and row.default for row in rows)
    assert {alias for row in rows for alias in row.aliases} == {*SECONDS_ALIASES, SINGLE_KEY, "ONEDNN_LINEAR"}

    class Aliased(Settings):  # a plain alias is declared on the field, its own name first
        old_limit: int = Field(1, ge=1, validation_alias=AliasChoices("OLD_LIMIT", "LEGACY_LIMIT"), description="x")

    assert Aliased.from_mapping({"LEGACY_LIMIT": "5"}).old_limit == 5
    assert Aliased.from_mapping({"OLD_LIMIT": "6", "LEGACY_LIMIT": "5"}).old_limit == 6
    with pytest.raises(SettingsError, match=r"^LEGACY_LIMIT='0': "):
        Aliased.from_mapping({"LEGACY_LIMIT": "0"})


def test_from_mapping_reads_only_the_mapping(monkeypatch, tmp_path):
    monkeypatch.setenv("PORT", "9999")
    monkeypatch.setenv("API_KEY", "from-the-environment")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("MAX_BATCH_SIZE=3\n")
    s = Settings.from_mapping({"THREADS": " 4 ", "WORKERS": "  ", "DEVICE": ""})
    assert (s.port, s.api_keys, s.max_batch_size, s.threads, s.workers, s.device) == (8080, (), 32, 4, 0, "auto")
    assert Settings.from_env(environ={}).max_batch_size == 3 and Settings.from_env(environ={}).port == 8080
    assert Settings.from_env().port == 9999 and len(Settings.from_env().api_keys) == 1
    # Lists are split on commas, never parsed as JSON.
    s = Settings.from_mapping({"DEVICES": "cuda:0, cuda:1,", "CORS_ORIGINS": '["https://a.example"]'})
    assert s.devices == ("cuda:0", "cuda:1") and s.cors_origins == ('["https://a.example"]',)


def test_slots_come_from_the_live_workers_and_survive_a_reload():
    pool = SlotPool(["cuda:0", "cuda:1"], 2)
    assert pool.acquire([]) == 0 and pool.acquire([(1, 0)]) == 1
    assert pool.acquire([(2, 1)]) == 0  # the worker on slot 0 exited: its replacement takes slot 0
    # A reload starts the new workers while the old ones (ages 1 and 2) still run: each new worker
    # shares the slot of the oldest worker that holds one alone, the next one Gunicorn retires.
    first = pool.acquire([(1, 0), (2, 1)])
    second = pool.acquire([(1, 0), (2, 1), (3, first)])
    assert (first, second) == (0, 1)
    pool = SlotPool(["cuda:0", "cuda:1"], 2)  # the configuration re-executed: a fresh pool
    assert pool.acquire([(3, 0)]) == 1  # still what the live workers leave free
