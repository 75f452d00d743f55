"""Throughput of a reference package on a corpus, in this process: texts per second of batch-32
encodes over the whole corpus, repeated for at least --seconds after one warm-up pass.

    python scripts/reference_throughput.py sentence-transformers MODEL_DIR CORPUS      # SparseEncoder.encode
    .venv-references/bin/python scripts/reference_throughput.py flagembedding MODEL_DIR CORPUS --output sparse
    .venv-references/bin/python scripts/reference_throughput.py flagembedding MODEL_DIR CORPUS --output colbert

Prints one JSON line: package, output, texts, seconds, texts_per_s, torch threads."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def encoder(package: str, path: str, output: str):
    if package == "sentence-transformers":
        from sentence_transformers import SparseEncoder

        model = SparseEncoder(path, device="cpu")
        return lambda texts: model.encode(texts, batch_size=32)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "support"))
    from reference_retrieval import older_transformers_copy  # the tokenizer class transformers 4 knows
    from FlagEmbedding import BGEM3FlagModel

    model = BGEM3FlagModel(older_transformers_copy(path, "XLMRobertaTokenizerFast"), use_fp16=False, devices="cpu")
    flags = {"return_dense": False, "return_sparse": output == "sparse", "return_colbert_vecs": output == "colbert"}
    window = int(model.tokenizer.model_max_length)  # FlagEmbedding's default (8192) is past a small model's positions
    return lambda texts: model.encode(texts, batch_size=32, max_length=window, **flags)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", choices=["sentence-transformers", "flagembedding"])
    parser.add_argument("model")
    parser.add_argument("corpus")
    parser.add_argument("--output", default="sparse", choices=["sparse", "colbert"])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    import torch

    with open(args.corpus, encoding="utf-8") as handle:
        texts = [line.strip() for line in handle if line.strip()]
    run = encoder(args.package, args.model, args.output)
    run(texts)  # warm-up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < args.seconds:
        run(texts)
        done += len(texts)
    seconds = time.perf_counter() - started
    print(json.dumps({"package": args.package, "output": args.output, "texts": done, "seconds": round(seconds, 2),
                      "texts_per_s": round(done / seconds, 1), "torch_threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
