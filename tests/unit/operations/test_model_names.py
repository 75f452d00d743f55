"""operations/model_names.py: the names clients send (Ollama's `name:tag` included) resolved to a
served label, and the JSON Schema that describes them."""

from __future__ import annotations

import re

import pytest

from embedding_service.operations.model_names import name_schema, resolve, tagged, tagged_pattern, without_tag


class Served:
    """The one registry method resolving needs: exact labels."""

    def __init__(self, *labels: str):
        self.labels = set(labels)

    def serves(self, label: str) -> bool:
        return label in self.labels


@pytest.mark.parametrize("name, base", [
    ("all-MiniLM-L6-v2:latest", "all-MiniLM-L6-v2"),
    ("bge:v1.5-q8_0", "bge"),
    ("org/model", None),  # a hub id has no tag
    (":latest", None),  # nothing before the tag
    ("m:", None),  # an empty tag
    ("m:bad tag", None),  # not a tag's characters
    ("m:" + "x" * 81, None),  # longer than Ollama's 80
])
def test_without_tag(name, base):
    assert without_tag(name) == base


def test_tagged_adds_latest_once():
    assert tagged("minilm") == "minilm:latest"
    assert tagged("minilm:v2") == "minilm:v2"


def test_resolve_prefers_the_exact_label_and_never_lets_an_unknown_name_through():
    engines = Served("minilm", "odd:name")
    assert resolve(engines, "minilm") == "minilm"
    assert resolve(engines, "minilm:latest") == "minilm"
    assert resolve(engines, "odd:name") == "odd:name"  # a served label with a colon is kept whole
    assert resolve(engines, "other:latest") == "other:latest"  # unknown: returned as sent, for the 404
    assert resolve(engines, None) is None and resolve(engines, "") == ""


def test_the_schema_accepts_exactly_what_resolve_serves():
    labels = ["minilm", "org/model.v1"]
    pattern = re.compile(tagged_pattern(labels))
    assert pattern.match("minilm:latest") and pattern.match("org/model.v1:q4")
    assert not pattern.match("orgXmodel.v1:q4")  # the dot and slash are literal
    assert not pattern.match("other:latest") and not pattern.match("minilm")
    schema = name_schema(labels, empty=True, nullable=True)
    assert schema["anyOf"][0] == {"type": "string", "enum": ["", "minilm", "org/model.v1"]}
    assert schema["anyOf"][-1] == {"type": "null"} and schema["default"] is None
