"""The peers' own contracts: schemathesis' command line runs TEI 1.9.3's published OpenAPI
document and the embed and rerank parts of Cohere's against a loopback server, in positive mode
(only requests the peer's document allows), checking server errors, status codes, content types
and response schemas on every route of the document.

Each deliberate deviation is data (support/peer_contracts.py): an id, the reason and the change
to the document that admits it; docs/api/contracts.md lists every one by id (tested here too).
Nothing else is relaxed. Bounded like the service's own run (tests/service/test_schemathesis_cli.py):
FUZZ_EXAMPLES examples per operation, deterministic, one worker, a wall-clock limit, run in a
temporary directory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from conftest import app_from, serve
from support.paths import ROOT
from support.peer_contracts import (  # (not the hooks modules: importing one registers its hooks in this process)
    COHERE_DEVIATIONS, COHERE_DOCUMENT, SERVED, TEI_DEVIATIONS, TEI_DOCUMENT, Deviation, load, patched,
)
from support.tiny_classifiers import shared_classifier
from support.tiny_retrieval import shared_bge_m3

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT_S = 300
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
CONTRACTS_PAGE = os.path.join(ROOT, "docs", "api", "contracts.md")


@pytest.fixture(scope="module")
def url():
    """MiniLM (the default: TEI's embedding routes and Cohere's), a tiny BGE-M3 (`/embed_sparse`)
    and a tiny classifier (`/predict`), on a threaded loopback server."""
    url, server = serve(app_from({"MODELS": f"{SERVED},bge-m3={shared_bge_m3()},sentiment={shared_classifier()}"}))
    yield url
    server.shutdown()


def run_document(url: str, document: dict, hooks: str, tmp_path) -> tuple[int, str]:
    """schemathesis' command line on `document` against `url`, positive mode, CHECKS;
    (test cases generated, output). Fails the test on any failure or a run past TIMEOUT_S."""
    path = tmp_path / "document.json"
    path.write_text(json.dumps(document))
    config = tmp_path / "schemathesis.toml"
    config.write_text("")
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color",
        "run", str(path), "--url", url, "--mode", "positive", "--checks", CHECKS,
        "--max-examples", str(EXAMPLES), "--workers", "1", "--request-timeout", "20",
    ]
    command += ["--generation-database", "none"] if "FUZZ_EXAMPLES" in os.environ else ["--generation-deterministic"]
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": hooks,
           "PYTHONPATH": os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")])}
    try:
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"schemathesis ran past {TIMEOUT_S} s")
    output = done.stdout + done.stderr
    short = "\n".join(line[:400] for line in output.splitlines())[-30_000:]
    assert done.returncode == 0, f"schemathesis exited with {done.returncode}:\n{short}"
    summary = re.search(r"(\d+) generated, (\d+) passed", output)
    assert summary and summary[1] == summary[2], short
    return int(summary[1]), output


@pytest.mark.slow
def test_teis_published_document_holds_but_for_the_listed_deviations(url, tmp_path):
    document = patched(TEI_DOCUMENT, TEI_DEVIATIONS)
    assert document["info"]["version"] == "1.9.3"
    cases, output = run_document(url, document, "support.schemathesis_hooks", tmp_path)
    assert cases >= 12 * min(EXAMPLES, 10), output[-3000:]  # every operation drew cases
    print(f"\n[peer contracts] TEI 1.9.3: {cases} test cases, all passed; deviations: "
          f"{', '.join(d.id for d in TEI_DEVIATIONS)}")


@pytest.mark.slow
def test_coheres_published_document_holds_but_for_the_listed_deviations(url, tmp_path):
    document = patched(COHERE_DOCUMENT, COHERE_DEVIATIONS)
    assert set(document["paths"]) == {"/v1/embed", "/v2/embed", "/v1/rerank", "/v2/rerank"}
    cases, output = run_document(url, document, "support.cohere_contract_hooks", tmp_path)
    assert cases >= 4 * min(EXAMPLES, 10), output[-3000:]
    print(f"\n[peer contracts] Cohere ({document['info']['x-vendored-from']['commit'][:12]}): {cases} test cases, "
          f"all passed; deviations: {', '.join(d.id for d in COHERE_DEVIATIONS)}")


# ------------------------------------------------------------------ fast: the deviations as written
@pytest.mark.parametrize("deviation", TEI_DEVIATIONS + COHERE_DEVIATIONS, ids=lambda d: d.id)
def test_each_deviation_is_documented(deviation: Deviation):
    with open(CONTRACTS_PAGE, encoding="utf-8") as handle:
        page = handle.read()
    assert f"- `{deviation.id}`:" in page, f"docs/api/contracts.md does not list {deviation.id}"


def test_the_docs_list_no_deviation_the_tests_do_not_hold():
    with open(CONTRACTS_PAGE, encoding="utf-8") as handle:
        listed = set(re.findall(r"^- `((?:tei|cohere)-[a-z-]+)`:", handle.read(), re.M))
    assert listed == {d.id for d in TEI_DEVIATIONS + COHERE_DEVIATIONS}


def test_a_patch_only_widens_what_the_document_admits():
    """A deviation adds alternatives (anyOf) or statuses; it never removes one the peer declares."""
    for source, deviations in ((TEI_DOCUMENT, TEI_DEVIATIONS), (COHERE_DOCUMENT, COHERE_DEVIATIONS)):
        original, changed = load(source), patched(source, deviations)
        for path, operations in original["paths"].items():
            for method, operation in operations.items():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                after = changed["paths"][path][method]["responses"]
                assert set(operation["responses"]) <= set(after), (path, method)
                for code, response in operation["responses"].items():
                    for media, body in (response.get("content") or {}).items():
                        schema = after[code]["content"][media]["schema"]
                        assert schema == body["schema"] or body["schema"] in schema.get("anyOf", []), (path, code)
