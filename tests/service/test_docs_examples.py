"""Every shell example of the documentation (docs/**/*.md, and README's requests) runs, as written,
against a live server: the pages cannot drift from the service.

Each page's `bash` blocks run in order in one shell (so a variable set in one block serves the
next), from the repository root, with `localhost:8080` pointing at a server that serves the
models the examples name (the embedded MiniLM; tiny random-weight models as `qwen`, `bge`,
`siglip`, `splade`, `bge-m3`, `colbert`, `sentiment` and `ner`, and a tiny Qwen3-Reranker as RERANK_MODEL). `curl` fails the page on any HTTP error,
except in an example that prints the status itself (`-w '%{http_code}'`): it shows an error on
purpose, and must get one (a 2xx fails the page).
Commands that need Docker or a Kubernetes cluster are written as `text` blocks, which must hold no
request to the service."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

import pytest

from conftest import app_from, serve
from support import tiny_classifiers, tiny_models, tiny_multimodal, tiny_rerankers, tiny_retrieval
from support.paths import ROOT

pytestmark = pytest.mark.slow

BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
SHELL = {"bash", "sh", "shell", "console"}
#: Fails the page on an HTTP error, showing the body; what the example prints is otherwise kept.
#: An example printing `%{http_code}` shows an error on purpose: it must answer 4xx or 5xx.
PRELUDE = """set -euo pipefail
curl() {
  case " $* " in
    *"%{http_code}"*)
      local out; out=$(command curl --show-error "$@"); printf '%s\\n' "$out"
      case "${out##*$'\\n'}" in 4??|5??) ;; *) echo "expected an error status, got: ${out##*$'\\n'}" >&2; return 1;; esac ;;
    *) command curl --fail-with-body --show-error "$@" ;;
  esac
}
"""


def pages() -> dict[str, list[str]]:
    """page (relative path) -> its shell blocks, in order. README's blocks that run `make` (which
    starts a server or the test suite itself) are not requests and stay out."""
    found = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True)) + [os.path.join(ROOT, "README.md")]:
        text = open(path, encoding="utf-8").read()
        blocks = [body for lang, body in BLOCK.findall(text) if lang in SHELL]
        if path.endswith("README.md"):
            blocks = [b for b in blocks if not re.search(r"(^|\s)make\s", b)]
        if blocks:
            found[os.path.relpath(path, ROOT)] = blocks
    return found


PAGES = pages()


@pytest.fixture(scope="module")
def docs_url(tmp_path_factory):
    folder = tmp_path_factory.mktemp("docs-models")
    qwen = tiny_models.build_qwen3_embedding(str(folder / "qwen3-embedding"))
    bge = tiny_rerankers.build_bert_cross_encoder(str(folder / "bge-reranker"))
    siglip = tiny_multimodal.build_siglip2(str(folder / "siglip2"))
    reranker = tiny_rerankers.build_qwen3_reranker(str(folder / "qwen3-reranker"))
    splade = tiny_retrieval.build_splade(str(folder / "splade"))
    m3 = tiny_retrieval.build_bge_m3(str(folder / "bge-m3"))
    colbert = tiny_retrieval.build_pylate_colbert(str(folder / "colbert"))
    sentiment = tiny_classifiers.build_classifier(str(folder / "sentiment"))
    ner = tiny_classifiers.build_token_classifier(str(folder / "ner"))
    app = app_from({
        "MODEL_NAME": "sentence-transformers/all-MiniLM-L6-v2",
        "MODELS": f"qwen={qwen},bge={bge},siglip={siglip},splade={splade},bge-m3={m3},colbert={colbert},"
                  f"sentiment={sentiment},ner={ner}",
        "RERANK_MODEL": reranker,
    })
    url, server = serve(app)
    yield url
    server.shutdown()


def test_the_documentation_has_examples_and_no_request_hides_in_plain_text():
    assert {"docs/api/openai.md", "docs/api/tei.md", "docs/api/ollama.md", "docs/api/cohere.md", "docs/api/siglip.md",
            "docs/api/operations.md", "docs/api/retrieval.md", "README.md"} <= set(PAGES)
    for path in glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True):
        for lang, body in BLOCK.findall(open(path, encoding="utf-8").read()):
            if lang in ("text", ""):  # (python blocks run in the integration matrix)
                assert "localhost:8080" not in body and "curl " not in body, (path, body[:200])


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_shell_example_runs(page, docs_url):
    host = docs_url.removeprefix("http://")
    script = PRELUDE + "\n".join(block.replace("localhost:8080", host) for block in PAGES[page])
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
               LOG_LEVEL="WARNING")
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{page}: exit {done.returncode}\n{done.stderr[-3000:]}\n{done.stdout[-2000:]}"
    assert done.stdout.strip(), f"{page}: the examples printed nothing"
