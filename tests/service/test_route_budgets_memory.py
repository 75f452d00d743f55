"""At the default budgets, the largest request each route's declaration admits (every route of
the URL map that takes items, walked as in test_route_budgets.py) is served by one real Gunicorn
worker with less than 1 GB of extra resident memory (its RSS high-water mark, VmHWM, against the
mark after one small request per route), while a neighbour's small request is answered within
2 s. Run on the real MiniLM (WordPiece; its window cut to 16 tokens so that 2,048 inputs fit a
test's time: the budgets, not the window, size the request), on the tiny Qwen3 embedder
(byte-level BPE), and, for the sparse and multi-vector routes, on their worst cases
(RETRIEVAL_MODELS)."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from embedding_service.config.settings import Settings
from embedding_service.process.boot import local_app
from support.budget_walk import largest, path_of
from support.servers import start_gunicorn, stop, wait_healthy

pytestmark = pytest.mark.slow

GIB = 1024**3
NEIGHBOUR_SECONDS = 2.0


def vm_hwm(pid: int) -> int:
    """The process's resident-memory high-water mark, bytes."""
    with open(f"/proc/{pid}/status") as handle:
        line = next(line for line in handle if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


#: The sparse and multi-vector routes' worst cases: a SPLADE model with BERT's 30,522-entry
#: vocabulary, every entry active for every input, and a BGE-M3 whose ColBERT vectors have 1,024
#: values (bge-m3's own size); and a classifier for the classification routes. The route's model
#: for each output, and the neighbour's.
RETRIEVAL_MODELS = {"sparse": "served", "multi-vector": "m3", "classifier": "sentiment", "neighbour": "m3"}


@pytest.mark.parametrize("family", ["minilm", "bpe", "retrieval"])
def test_the_largest_request_of_every_route_stays_under_1_gb_and_a_neighbour_is_answered(tmp_path, tiny, minilm_path, family):
    if family == "retrieval":
        from support import tiny_retrieval

        splade = tiny_retrieval.build_splade(str(tmp_path / "splade"), vocab_size=30522, all_active=True)
        m3 = tiny_retrieval.build_bge_m3(str(tmp_path / "bge-m3"), colbert_dim=1024)
        from support.tiny_classifiers import build_classifier

        model = f"served={splade},m3={m3},sentiment={build_classifier(str(tmp_path / 'sentiment'))}"
    else:
        model = {"minilm": f"served={minilm_path};max_length=16", "bpe": f"served={tiny['qwen']}"}[family]
    retrieval = family == "retrieval"
    names = RETRIEVAL_MODELS if retrieval else {}
    env = {"MODELS": model, "WORKERS": "1", "THREADS": "8"}
    app = local_app(Settings.from_mapping({**env, "LOG_LEVEL": "WARNING", "DEVICE": "cpu"}))  # its routes and budgets
    state = app.extensions["embedding_service"]
    url, proc = start_gunicorn(tmp_path, **env)
    try:
        wait_healthy(url, proc)
        pid = requests.get(f"{url}/health", timeout=10).json()["pid"]
        session = requests.Session()
        routes = [(path_of(rule), app.view_functions[rule.endpoint].operation.budget)
                  for rule in app.url_map.iter_rules() if "POST" in rule.methods
                  and app.view_functions[rule.endpoint].operation.budget.item is not None
                  and (app.view_functions[rule.endpoint].operation.budget.capability is not None) == retrieval]
        assert len(routes) >= (3 if retrieval else 16)
        for path, budget in routes:  # every route once, small: the baseline includes its code paths
            small = largest(budget, state.settings.model_copy(update={"max_client_batch_size": 2, "max_request_chars": 400}),
                            state.engines, names.get(budget.capability, "served"))[0]
            assert session.post(url + path, json=small, timeout=60).status_code == 200, path
        baseline = vm_hwm(pid)
        report = []
        for path, budget in routes:
            body, count, size = largest(budget, state.settings, state.engines, names.get(budget.capability, "served"))
            answer: dict = {}

            def big() -> None:
                started = time.perf_counter()
                resp = requests.post(url + path, json=body, timeout=300)
                answer.update(status=resp.status_code, seconds=time.perf_counter() - started, text=resp.text[:200])

            thread = threading.Thread(target=big)
            thread.start()
            time.sleep(0.5)
            started = time.perf_counter()
            neighbour = requests.post(url + "/v1/embeddings", json={"input": "a neighbour", "model": names.get("neighbour", "served")}, timeout=60)
            waited = time.perf_counter() - started
            thread.join(timeout=300)
            grown = vm_hwm(pid) - baseline
            report.append((path, count, size, answer.get("seconds"), round(waited, 2), grown // 2**20))
            assert answer.get("status") == 200, (path, answer)
            assert neighbour.status_code == 200 and waited < NEIGHBOUR_SECONDS, (path, waited)
            assert grown < GIB, report
        print("\n".join(f"{path}: {count} x {size}, {seconds:.1f} s; neighbour {waited} s; VmHWM +{mib} MiB"
                        for path, count, size, seconds, waited, mib in report))
    finally:
        stop(proc)
