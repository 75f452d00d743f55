"""The test suite's own virtualenvs (`make integrations`, `make references`): the interpreter a
test runs a library with, or a skip that quotes why the venv is missing (a fail where the
REQUIRE_ variable asks for it)."""

from __future__ import annotations

import os

import pytest


def venv_python(venv: str, requirements: str, target: str, explicit: str, require: str, what: str) -> str:
    """The python of `venv` (its `.installed` stamp written by `make target`), or the interpreter
    the environment variable `explicit` names. Without either: pytest.skip quoting the install
    log of `requirements`, or pytest.fail when the environment variable `require` is set."""
    if os.environ.get(explicit):
        return os.environ[explicit]
    if os.path.exists(os.path.join(venv, ".installed")):
        return os.path.join(venv, "bin", "python")
    log = os.path.join(venv, "install.log")
    why = f"run `make {target}`"
    if os.path.exists(log):
        with open(log, encoding="utf-8", errors="replace") as handle:
            why = f"installing {requirements} failed: " + handle.read()[-600:].strip()
    reason = f"{what} are not installed in {venv} ({why})"
    if os.environ.get(require):
        pytest.fail(reason)
    pytest.skip(reason)
