"""The hybrid-search example of docs/api/retrieval.md runs as written (its host pointed at a live
server serving a tiny random-weight BGE-M3 as `bge-m3`) against Qdrant's local mode, the real
embedded vector database: dense and sparse vectors from the service indexed, queried with Qdrant's
own RRF fusion."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import app_from, serve
from support import tiny_retrieval
from support.paths import ROOT

pytestmark = pytest.mark.slow

PAGE = os.path.join(ROOT, "docs", "api", "retrieval.md")
SNIPPET = re.compile(r"<!-- tested: hybrid-search -->\n```python\n(.*?)```", re.S)
CORPUS_LINE = re.compile(r"^(\d+\.\d{3})  (.+)$")


@pytest.fixture(scope="module")
def m3_url(tmp_path_factory):
    m3 = tiny_retrieval.build_bge_m3(str(tmp_path_factory.mktemp("hybrid") / "bge-m3"))
    url, server = serve(app_from({"MODELS": f"bge-m3={m3}"}))
    yield url
    server.shutdown()


def test_the_hybrid_search_example_runs_against_qdrant(m3_url, tmp_path):
    snippets = SNIPPET.findall(open(PAGE, encoding="utf-8").read())
    assert len(snippets) == 1
    script = tmp_path / "hybrid.py"
    script.write_text(snippets[0].replace("http://localhost:8080", m3_url))
    env = {**os.environ, "PYTHONPATH": ""}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    print(done.stdout)
    assert len(lines) == 3
    rows = [CORPUS_LINE.match(line) for line in lines]
    assert all(rows), lines
    scores = [float(row.group(1)) for row in rows]
    # RRF over two rankings: each score is a sum of 1/(k + rank) over the prefetches that found
    # the point (at most 1/2 each), best first.
    assert scores == sorted(scores, reverse=True) and 0 < scores[-1] and scores[0] <= 1.0
    assert {row.group(2) for row in rows} <= {
        "Paris is the capital of France.", "A cat sits on the mat.", "The stock market fell sharply today.",
        "Neural networks are inspired by the human brain.", "Berlin is the capital of Germany.",
    }
