"""The peers' published API documents (tests/contracts/), and the deviations from them this
service keeps on purpose, each as data: an id, the reason, and the change to the document that
admits it. The contract tests run schemathesis against the patched copy; docs/api/contracts.md
lists every deviation by its id (a test holds the two together)."""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from typing import Callable

import yaml

from support.paths import ROOT

CONTRACTS = os.path.join(ROOT, "tests", "contracts")
#: The model the contract runs' server serves (the Cohere run names it in every request).
SERVED = "sentence-transformers/all-MiniLM-L6-v2"
TEI_DOCUMENT = os.path.join(CONTRACTS, "tei-openapi-1.9.3.json")
COHERE_DOCUMENT = os.path.join(CONTRACTS, "cohere-openapi-embed-rerank.yaml")

#: The nested error body (OpenAI's, and the service's own).
NESTED_ERROR = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["message", "type", "code"],
                             "properties": {"message": {"type": "string"}, "type": {"type": "string"}}}},
}
#: Cohere's rerank body, as the plain rerank API answers on `/rerank`.
COHERE_RERANK = {
    "type": "object", "required": ["id", "results", "meta"],
    "properties": {"results": {"type": "array", "items": {"type": "object", "required": ["index", "relevance_score"]}}},
}
COHERE_ERROR = {"type": "object", "required": ["id", "message"], "properties": {"message": {"type": "string"}}}


@dataclass(frozen=True)
class Deviation:
    """One deliberate difference from a peer's document: `id` (named in the docs), `reason`, and
    `patch`, which changes the document (a dict, in place) to admit it."""

    id: str
    reason: str
    patch: Callable[[dict], None]


def load(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle) if path.endswith(".json") else yaml.safe_load(handle)


def _either(doc: dict, path: str, codes: Callable[[str], bool], extra: dict) -> None:
    """The response schemas of `path`'s POST for the status codes `codes` picks: the peer's, or `extra`."""
    for code, response in doc["paths"][path]["post"]["responses"].items():
        if codes(code):
            media = response["content"]["application/json"]
            media["schema"] = {"anyOf": [media["schema"], extra]}


def _not_found_for_unknown_models(doc: dict) -> None:
    """A 404 on every POST: the peer's error body, or (on OpenAI's route) the nested one."""
    for path, operations in doc["paths"].items():
        post = operations.get("post")
        if post is not None and "404" not in post["responses"]:
            error = post["responses"].get("400", {}).get("content", {}).get("application/json", {}).get("schema", {})
            post["responses"]["404"] = {"description": "unknown model",
                                        "content": {"application/json": {"schema": {"anyOf": [error, NESTED_ERROR]}}}}


def _json_body_on_health(doc: dict) -> None:
    doc["paths"]["/health"]["get"]["responses"]["200"]["content"] = {"application/json": {"schema": {"type": "object"}}}


TEI_DEVIATIONS = [
    Deviation(
        "tei-plain-rerank",
        "A bare `{\"query\", \"texts\"}` on `/rerank` is the plain rerank API's request and gets Cohere's body "
        "(errors too); any of TEI's own fields (`truncate`, `raw_scores`, `return_text`, `truncation_direction`) "
        "makes it TEI's request, answered with TEI's list.",
        lambda doc: (_either(doc, "/rerank", lambda code: code == "200", COHERE_RERANK),
                     _either(doc, "/rerank", lambda code: code != "200", COHERE_ERROR)),
    ),
    Deviation(
        "tei-openai-errors",
        "`/v1/embeddings` is OpenAI's route: its errors are OpenAI's nested body, which OpenAI's SDK reads, "
        "not TEI's flat `OpenAICompatErrorResponse`.",
        lambda doc: _either(doc, "/v1/embeddings", lambda code: code != "200", NESTED_ERROR),
    ),
    Deviation(
        "tei-model-names",
        "The service serves several models: a `model` field naming none of them is a 404 that lists the served "
        "ones. TEI serves one model and ignores the field.",
        _not_found_for_unknown_models,
    ),
    Deviation(
        "tei-health-body",
        "`GET /health` answers a small JSON object (`{\"status\": \"ok\"}`) where TEI's document declares an empty body.",
        _json_body_on_health,
    ),
]


#: Deviations that change no document: what the run shows only as requests refused (4xx, which
#: both documents allow) instead of served.
STRICT_INPUT = (
    "Empty texts, empty lists and unknown fields are refused with a 400 naming the field; the peer "
    "ignores unknown fields (and TEI embeds an empty text)."
)

TEI_DEVIATIONS += [
    Deviation("tei-strict-input", STRICT_INPUT, lambda doc: None),
    Deviation(
        "tei-truncate-default",
        "`truncate` defaults to true (TEI's `--auto-truncate`, which `/info` reports), not false; send "
        "`\"truncate\": false` for a 422 on an over-long input, as TEI answers without the flag.",
        lambda doc: None,
    ),
]

COHERE_DEVIATIONS = [
    Deviation(
        "cohere-model-names",
        "`model` must name a model the deployment serves (a 404 lists them); the run sends the served "
        "model's name where Cohere's document names Cohere's hosted models.",
        lambda doc: None,
    ),
    Deviation("cohere-strict-input", STRICT_INPUT, lambda doc: None),
    Deviation(
        "cohere-budgets",
        "A request over a configured budget (`MAX_CLIENT_BATCH_SIZE`, `MAX_INPUT_CHARS`, ...) is a 413 "
        "naming the setting; Cohere's document lists no 413 (Cohere answers 400 for its own limits).",
        lambda doc: None,
    ),
]


def patched(path: str, deviations: list[Deviation]) -> dict:
    """The document at `path` with every deviation's patch applied (a copy)."""
    doc = copy.deepcopy(load(path))
    for deviation in deviations:
        deviation.patch(doc)
    return doc
