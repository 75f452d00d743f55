"""The reference packages of the retrieval parity tests (FlagEmbedding, PyLate), run in their own
virtualenv, .venv-references (`make references`), by tests/support/reference_retrieval.py.

Without the venv the tests skip, quoting its install.log; with REQUIRE_REFERENCES=1, or once
`make references` has succeeded, they fail instead."""

from __future__ import annotations

import json
import os
import subprocess

from support.paths import ROOT, SUPPORT
from support.venvs import venv_python

VENV = os.path.join(ROOT, ".venv-references")
SCRIPT = os.path.join(SUPPORT, "reference_retrieval.py")


def reference_python() -> str:
    return venv_python(VENV, "requirements-references.txt", "references", "REFERENCES_PYTHON", "REQUIRE_REFERENCES",
                       "the reference packages")


def run_reference(package: str, path: str, tokenizer_class: str, texts: list, queries: list = ()) -> dict:
    """The reference package's outputs on the model at `path` (see reference_retrieval.py)."""
    request = {"package": package, "path": path, "tokenizer_class": tokenizer_class, "texts": list(texts),
               "queries": list(queries)}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": ""}
    done = subprocess.run([reference_python(), SCRIPT, json.dumps(request)], capture_output=True, text=True, timeout=300,
                          env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)
