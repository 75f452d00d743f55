"""Cut the embed and rerank parts out of Cohere's published API document (`cohere-openapi.yaml`
of Cohere's `cohere-developer-experience` repository) into tests/contracts/.

Keeps the paths `/v1/embed`, `/v2/embed`, `/v1/rerank` and `/v2/rerank`, every component they
reference (transitively), and the document's own header; drops the SDK code samples
(`x-fern-examples`). The source commit and date go into `info.x-vendored-from`.

    python scripts/vendor_cohere_contract.py cohere-openapi.yaml COMMIT DATE > tests/contracts/cohere-openapi-embed-rerank.yaml
"""

from __future__ import annotations

import sys

import yaml

PATHS = ("/v1/embed", "/v2/embed", "/v1/rerank", "/v2/rerank")


def refs(node, found: set) -> None:
    """Every `#/components/<kind>/<name>` that `node` references, into `found`."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            found.add(tuple(ref.split("/")[2:4]))
        for value in node.values():
            refs(value, found)
    elif isinstance(node, list):
        for value in node:
            refs(value, found)


def strip(node):
    """`node` without the SDK code samples."""
    if isinstance(node, dict):
        return {key: strip(value) for key, value in node.items() if key != "x-fern-examples"}
    if isinstance(node, list):
        return [strip(value) for value in node]
    return node


def main(source: str, commit: str, date: str) -> None:
    with open(source, encoding="utf-8") as handle:
        doc = yaml.safe_load(handle)
    paths = {path: strip(doc["paths"][path]) for path in PATHS}
    wanted: set = set()
    refs(paths, wanted)
    components: dict = {}
    pending = list(wanted)
    while pending:
        kind, name = pending.pop()
        section = components.setdefault(kind, {})
        if name in section:
            continue
        section[name] = strip(doc["components"][kind][name])
        more: set = set()
        refs(section[name], more)
        pending.extend(more - {(k, n) for k, names in components.items() for n in names})
    if "securitySchemes" in doc.get("components", {}):
        components["securitySchemes"] = doc["components"]["securitySchemes"]
    info = dict(doc["info"])
    info["x-vendored-from"] = {
        "repository": "cohere-ai/cohere-developer-experience", "path": "cohere-openapi.yaml",
        "commit": commit, "date": date, "paths": list(PATHS),
    }
    out = {"openapi": doc["openapi"], "info": info, "servers": doc.get("servers", []),
           "security": doc.get("security", []), "paths": paths, "components": components}
    yaml.safe_dump(out, sys.stdout, sort_keys=False, allow_unicode=True, width=120)


if __name__ == "__main__":
    main(*sys.argv[1:4])
