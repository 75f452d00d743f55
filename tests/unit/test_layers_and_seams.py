"""The seams: engines own every piece from construction, lookups go by capability (and hold under
`python -O`), the family table decides the class, a new family is one module plus one row, and
tokenising is safe from many threads at once without a lock."""

from __future__ import annotations

import tempfile

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import load_registry
from embedding_service.process.boot import local_app
from embedding_service.inference.batch_plan import BatchBounds
from embedding_service.inference.engine import Capability, Engine
from embedding_service.domain.errors import InvalidInput, ModelNotFound
from embedding_service.models import families
from embedding_service.models.prompts import PromptChoice
from embedding_service.models.interfaces import (
    Classifier, ImageEncoder, MultiVectorEncoder, Reranker, SparseEncoder, TokenClassifier,
)
from embedding_service.models.text_encoder import TextEncoder
from embedding_service.models.families import FAMILIES, Family, detect_family, model_type, named_reranker
from embedding_service.models.files import ModelFiles

#: A model with no files besides config.json (detection reads none).
NO_FILES = ModelFiles(tempfile.mkdtemp(prefix="no-files-"))
from embedding_service.config.model_specs import ModelSpec
from embedding_service.config.settings import Settings, SettingsError
from embedding_service.operations.state import Phase, ServiceState, WorkerInfo

from support.paths import ROOT  # noqa: E402


def spec(name: str = "m", reference: str = "/models/m", **options) -> ModelSpec:
    return ModelSpec(name=name, reference=reference, options=options)


@pytest.mark.parametrize(
    "config, options, name, expected",
    [
        ({"model_type": "siglip2"}, {}, "m", "siglip2"),
        ({"model_type": "siglip"}, {}, "m", "siglip"),
        ({"model_type": "clip"}, {}, "m", "clip"),
        ({"model_type": "xlm-roberta", "architectures": ["XLMRobertaForSequenceClassification"]}, {}, "m", "cross-encoder"),
        ({"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"]}, {}, "qwen3-reranker-0.6b", "qwen3-reranker"),
        ({"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"]}, {"kind": "rerank"}, "m", "qwen3-reranker"),
        ({"model_type": "qwen3", "architectures": ["Qwen3Model"]}, {}, "qwen3-embedding", "text"),
        ({"model_type": "bert", "architectures": ["BertModel"]}, {}, "m", "text"),
    ],
)
def test_the_family_table_decides_the_class(config, options, name, expected):
    assert detect_family(spec(name, **options), config, NO_FILES).name == expected


def test_a_forced_kind_that_does_not_fit_names_the_model_and_what_fits():
    with pytest.raises(SettingsError, match=r"model 'm': a rerank model must be a sequence-classification "
                                            r"cross-encoder or a Qwen3-Reranker-style causal LM"):
        detect_family(spec(kind="rerank"), {"model_type": "bert", "architectures": ["BertModel"]}, NO_FILES)
    with pytest.raises(SettingsError, match="a multimodal model must be SigLIP 2 or SigLIP or CLIP"):
        detect_family(spec(kind="multimodal"), {"model_type": "bert"}, NO_FILES)


#: The interfaces a class of each kind must implement (what its engine's capabilities come from).
KIND_INTERFACES = {"text": (TextEncoder,), "multimodal": (TextEncoder, ImageEncoder), "rerank": (Reranker,),
                   "classifier": (Classifier,), "token-classifier": (TokenClassifier,),
                   "sparse": (TextEncoder, SparseEncoder), "multi-vector": (TextEncoder, MultiVectorEncoder)}


def test_kinds_and_families_are_declared_once():
    assert families.KINDS == ("multimodal", "rerank", "classifier", "token-classifier", "sparse", "multi-vector", "text")
    assert {f.kind for f in FAMILIES} == set(families.KINDS)  # every kind served by a row, no row of another kind
    assert len({f.name for f in FAMILIES}) == len(FAMILIES)
    for family in FAMILIES:  # every row's class imports and implements the interface of its kind
        cls = family.load_class()
        missing = [i.__name__ for i in KIND_INTERFACES[family.kind] if not issubclass(cls, i)]
        assert not missing, f"family {family.name!r} ({family.kind}): {cls.__name__} does not implement {missing}"
        assert not getattr(cls, "__abstractmethods__", None), f"{cls.__name__} leaves {set(cls.__abstractmethods__)} abstract"


def test_an_engine_cannot_be_built_without_its_observer_and_cpu_share(minilm_path):
    registry = load_registry(Settings.from_mapping({"MODEL_NAME": minilm_path, "LOG_LEVEL": "WARNING"}), warmup=False)
    model = registry.first.model
    with pytest.raises(TypeError):
        Engine(model, BatchBounds(8, 1024))  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Engine(model, BatchBounds(8, 1024), observer=None)  # type: ignore[call-arg]
    engine = Engine(model, BatchBounds(8, 1024), observer=None, cpu_share=None)
    assert engine.capabilities == {Capability.EMBED_TEXT, Capability.TOKEN_STATES}  # token states: now declared

    # What the engine is built with is what its forward passes use: the observer sees the batch,
    # the CPU share is entered and left around the pass.
    class Recorder:
        def __init__(self):
            self.calls = []

        def __getattr__(self, name):
            return lambda *args: self.calls.append(name)

    observer, share = Recorder(), Recorder()
    engine = Engine(model, BatchBounds(8, 1024), observer=observer, cpu_share=share)
    encoded = engine.embed_texts(["a cat", "a dog"], PromptChoice(), True, "right")
    assert encoded.vectors.shape == (2, model.dimension)
    assert "batch" in observer.calls and "queued" in observer.calls
    assert share.calls == ["enter", "leave"]


def test_lookups_by_capability(rr_app):
    engines = rr_app.extensions["embedding_service"].engines
    assert engines.default(Capability.SCORE_PAIRS).name == engines.names()[1]  # RERANK_MODEL, the Qwen3 reranker
    assert engines.default(Capability.EMBED_TEXT).name == "sentence-transformers/all-MiniLM-L6-v2"
    with pytest.raises(InvalidInput, match="no model that can do image embeddings is configured"):
        engines.default(Capability.EMBED_IMAGES)
    with pytest.raises(InvalidInput, match="is a rerank model and cannot do text embeddings"):
        engines.get("bert-ce", Capability.EMBED_TEXT)
    with pytest.raises(ModelNotFound, match="served models"):
        engines.get("nope", Capability.EMBED_TEXT)
    assert engines.get("bert-ce", Capability.SCORE_PAIRS).model.family.name == "cross-encoder"


def test_capability_checks_hold_under_python_optimize(rr_client):
    """No check relies on `assert`: the package under `python -O` refuses a wrong-capability model."""
    code = (
        "from embedding_service.inference.engine import Engine\n"
        "from embedding_service.domain.errors import InvalidInput\n"
        "from embedding_service.http.errors import status_of\n"
        "class M: name='r'; aliases=(); dimension=1; kind='rerank'\n"
        "import threading; M.lock=threading.Lock()\n"
        "from embedding_service.inference.batch_plan import BatchBounds\n"
        "e = Engine(M(), BatchBounds(1, 1), observer=None, cpu_share=None)\n"
        "try:\n    e.embed_texts(['a'], None, True, 'right')\nexcept InvalidInput as err:\n    print('refused', status_of(err)[0])\n"
    )
    done = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.stdout.strip() == "refused 400", done.stderr
    resp = rr_client.post("/v1/embeddings", json={"input": "a", "model": "bert-ce"})
    assert resp.status_code == 400 and resp.get_json()["error"]["param"] == "model"


def test_a_new_family_is_one_module_and_one_row(tiny, monkeypatch):
    """The guide's worked example: tests/support/example_family.py plus one row in FAMILIES."""
    row = Family("e5", "text", "an E5 embedder", lambda s, c, f: s.name.startswith("e5"), "support.example_family:E5Embedder")
    monkeypatch.setattr(families, "FAMILIES", (row, *FAMILIES))
    app = local_app(Settings.from_mapping({
        "MODELS": f"e5-small={tiny['bert_cls']},plain={tiny['bert_cls']}", "DEVICE": "cpu", "LOG_LEVEL": "WARNING",
    }))
    client = app.test_client()
    info = {m["id"]: m for m in client.get("/info").get_json()["models"]}
    assert info["e5-small"]["family"] == "e5" and info["plain"]["family"] == "text"

    def vector(model, text, **extra):
        resp = client.post("/v1/embeddings", json={"input": text, "model": model, **extra})
        assert resp.status_code == 200, resp.get_json()
        return np.array(resp.get_json()["data"][0]["embedding"])

    np.testing.assert_allclose(vector("e5-small", "a cat", input_type="query"), vector("plain", "query: a cat"), atol=1e-6)
    np.testing.assert_allclose(vector("e5-small", "a cat"), vector("plain", "passage: a cat"), atol=1e-6)
    assert not np.allclose(vector("e5-small", "a cat"), vector("plain", "a cat"), atol=1e-3)


def test_concurrent_tokenisation_with_mixed_truncation_matches_sequential(app):
    """Many threads tokenise at once with different sides and truncation (the tokenizer's state):
    every result equals the one computed alone; no lock serialises them."""
    model = app.extensions["embedding_service"].engines.first.text_encoder
    texts = [f"{i} " + "alpha beta gamma delta " * (10 + i % 90) for i in range(48)]
    cases = [(text, truncate, side) for text in texts for truncate, side in ((True, "right"), (True, "left"), (False, "right"))]

    def run(case):
        text, truncate, side = case
        if not truncate and len(model.tokenize.ids(text)) + 2 > model.max_length:
            return None
        return model.prepare_texts([text], PromptChoice(), truncate, side)[0].ids

    expected = [run(case) for case in cases]
    barrier = threading.Barrier(8)

    def hammered(index):
        if index < 8:
            barrier.wait(10)
        return run(cases[index])

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up at once
    try:
        with ThreadPoolExecutor(8) as pool:
            for _ in range(3):
                assert list(pool.map(hammered, range(len(cases)))) == expected
    finally:
        sys.setswitchinterval(switch)
    long_text = "first " + "alpha beta gamma delta " * 100 + "last"
    left = run((long_text, True, "left"))
    right = run((long_text, True, "right"))
    assert left != right and len(left) == len(right) == model.max_length


def test_the_phase_is_an_enum_with_one_owner():
    settings = Settings.from_mapping({"LOG_LEVEL": "WARNING", "METRICS": "false"})
    state = ServiceState.create(settings, WorkerInfo(device="cpu"))
    assert state.phase is Phase.LOADING and state.engines is None
    state.drain()  # SIGTERM while still loading
    state.mark_ready(object())  # type: ignore[arg-type]
    assert state.phase is Phase.DRAINING  # finishing the load does not make a draining worker ready
    assert state.budgets.max_client_batch_size == settings.max_client_batch_size


def test_a_long_tokenisation_does_not_hold_up_a_short_one(app):
    """One request tokenising a large batch must not make another request on the same model wait
    for it (a tokenizer lock held across the call would)."""
    import time

    model = app.extensions["embedding_service"].engines.first.text_encoder
    count = 1500
    for _ in range(6):  # grow the batch until tokenising it alone takes long enough to measure against
        big = [f"{i} " + "alpha beta gamma delta epsilon " * 60 for i in range(count)]
        started = time.perf_counter()
        model.prepare_texts(big, PromptChoice(), True, "left")
        alone = time.perf_counter() - started
        if alone > 0.3:
            break
        count *= 2
    model.prepare_texts(["warm"], PromptChoice(), True, "right")
    thread = threading.Thread(target=model.prepare_texts, args=(big, PromptChoice(), True, "left"))
    thread.start()
    time.sleep(alone / 5)
    began = time.perf_counter()
    model.prepare_texts(["a short query"], PromptChoice(), True, "right")
    waited = time.perf_counter() - began
    was_running = thread.is_alive()
    thread.join()
    assert was_running and waited < alone / 3, (waited, alone)
