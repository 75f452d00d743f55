"""Run by the reference venv's Python (.venv-references: FlagEmbedding and PyLate, whose pins
clash with the service's): the reference packages' own outputs on a tiny model, as JSON on stdout.

    python reference_retrieval.py '{"package": "flagembedding" | "pylate", "path": ..., "texts": [...],
                                    "queries": [...]}'
"""

from __future__ import annotations

import json
import sys

import numpy as np


def flagembedding(path: str, texts: list, queries: list) -> dict:
    from FlagEmbedding import BGEM3FlagModel

    model = BGEM3FlagModel(path, use_fp16=False, devices="cpu")
    out = model.encode(texts, batch_size=4, max_length=64, return_dense=True, return_sparse=True, return_colbert_vecs=True)
    # convert_id_to_token per entry: several ids may decode to one string (byte-level pieces).
    tokens = [{str(i): next(iter(model.convert_id_to_token({i: w}))) for i, w in weights.items()}
              for weights in out["lexical_weights"]]
    query = model.encode(queries, batch_size=4, max_length=64, return_dense=False, return_sparse=False, return_colbert_vecs=True)
    scores = [[float(model.colbert_score(q, d)) for d in out["colbert_vecs"]] for q in query["colbert_vecs"]]
    return {
        "dense": np.asarray(out["dense_vecs"]).tolist(),
        "sparse": [{str(k): float(v) for k, v in weights.items()} for weights in out["lexical_weights"]],
        "sparse_tokens": tokens,
        "colbert": [np.asarray(v).tolist() for v in out["colbert_vecs"]],
        "query_colbert": [np.asarray(v).tolist() for v in query["colbert_vecs"]],
        "colbert_score": scores,
    }


def pylate(path: str, texts: list, queries: list) -> dict:
    from pylate import models, rank  # noqa: F401

    model = models.ColBERT(model_name_or_path=path, device="cpu")
    documents = model.encode(texts, is_query=False, batch_size=4)
    query = model.encode(queries, is_query=True, batch_size=4)
    from pylate.scores import colbert_scores

    import torch

    scores = [[float(colbert_scores(torch.as_tensor(q)[None], torch.as_tensor(d)[None])[0][0]) for d in documents] for q in query]
    return {"documents": [np.asarray(d).tolist() for d in documents], "queries": [np.asarray(q).tolist() for q in query],
            "scores": scores}


def older_transformers_copy(path: str, tokenizer_class: str) -> str:
    """A copy of the model whose tokenizer config names `tokenizer_class`: the reference packages
    pin transformers 4, which does not know the backend name transformers 5 writes."""
    import os
    import shutil
    import tempfile

    copy = os.path.join(tempfile.mkdtemp(prefix="reference-"), "model")
    shutil.copytree(path, copy)
    config_path = os.path.join(copy, "tokenizer_config.json")
    with open(config_path, encoding="utf-8") as handle:
        config = json.load(handle)
    config["tokenizer_class"] = tokenizer_class
    with open(config_path, "w", encoding="utf-8") as handle:
        json.dump(config, handle)
    return copy


if __name__ == "__main__":
    request = json.loads(sys.argv[1])
    run = {"flagembedding": flagembedding, "pylate": pylate}[request["package"]]
    path = older_transformers_copy(request["path"], request["tokenizer_class"])
    json.dump(run(path, request["texts"], request.get("queries", [])), sys.stdout)
