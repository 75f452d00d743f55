"""How close bf16 comes to float32 on the embedded default (CONCURRENCY_ANALYSIS.md, quality table).

    .venv/bin/python scripts/precision_quality.py              # quality table, Markdown
    .venv/bin/python scripts/precision_quality.py --speed 6    # and each precision's forward rate, 6 s each

The fixed text set is `scripts/quality_texts.txt`: 400 lines, 81 written for it (everyday topics,
science, news, search queries, code, 15 languages) and 319 first sentences of Python 3.11
standard-library docstrings (technical English), in hash order. For each precision (DTYPE) the
400 texts are embedded through the service's own model code (`Registry.load`, batches of 32) and
compared with float32: the cosine of each text's vector to its float32 vector (smallest and
mean), and top-10 retrieval overlap: each text queries the other 399, and the share of its 10
nearest neighbours under float32 that it also finds under the precision (mean and smallest).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
TEXTS = os.path.join(ROOT, "scripts", "quality_texts.txt")
PRECISIONS = ("float32", "bfloat16", "bfloat16-weights")


def load(dtype: str):
    from embedding_service.inference.registry import Registry
    from embedding_service.inference.runtime import Runtime
    from embedding_service.config.settings import Settings

    settings = Settings.from_mapping({"LOG_LEVEL": "ERROR", "DTYPE": dtype, "CPU_KERNELS": os.environ.get("CPU_KERNELS", "auto")})
    return Registry.load(settings, Runtime.local(settings, "cpu")).first.model


def embed(model, texts: list[str], batch: int = 32) -> np.ndarray:
    from embedding_service.inference import compute
    from embedding_service.models.prompts import PromptChoice

    rows = []
    with model.lock:
        for start in range(0, len(texts), batch):
            rows.append(compute.run(model.forward, model.prepare_texts(texts[start:start + batch], PromptChoice(), True, "right")))
    vectors = np.concatenate(rows).astype(np.float64)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def top_k(vectors: np.ndarray, k: int = 10) -> np.ndarray:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


def rate(model, texts: list[str], seconds: float, batch: int = 32) -> float:
    from embedding_service.inference import compute
    from embedding_service.models.prompts import PromptChoice

    items = model.prepare_texts(texts, PromptChoice(), True, "right")
    done, began = 0, time.perf_counter()
    with model.lock:
        while time.perf_counter() - began < seconds:
            start = done % (len(items) - batch)
            compute.run(model.forward, items[start:start + batch])
            done += batch
    return done / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speed", type=float, default=0.0, help="also time each precision's forward rate, seconds each")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own)")
    parser.add_argument("--json", default=None, help="also write the figures as JSON to this file")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with open(TEXTS, encoding="utf-8") as handle:
        texts = [line.rstrip("\n") for line in handle if line.strip()]
    from embedding_service.inference.cpu.precision import native_bf16

    models = {dtype: load(dtype) for dtype in PRECISIONS}
    vectors = {dtype: embed(model, texts) for dtype, model in models.items()}
    reference, neighbours = vectors["float32"], top_k(vectors["float32"])
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"CPU: {cpu}, {os.cpu_count()} cores, native bf16: {native_bf16() or 'none'}; {len(texts)} texts; "
          f"torch threads {torch.get_num_threads()}")
    head = "| DTYPE | served as | min cosine to float32 | mean cosine | top-10 overlap (mean) | top-10 overlap (min) |"
    print(head + (" forward items/s (batch 32) |" if args.speed else ""))
    print("|---|---|---:|---:|---:|---:|" + ("---:|" if args.speed else ""))
    speeds = {}
    if args.speed:  # alternate the precisions twice, best of two, so a noisy moment hits all alike
        for _ in range(2):
            for dtype, model in models.items():
                speeds[dtype] = max(speeds.get(dtype, 0.0), rate(model, texts, args.speed / 2))
    figures = {}
    for dtype, model in models.items():
        cosines = (vectors[dtype] * reference).sum(axis=1)
        found = top_k(vectors[dtype])
        overlap = np.array([len(set(a) & set(b)) / 10 for a, b in zip(neighbours, found)])
        figures[dtype] = {"served_as": model.precision, "min_cosine": float(cosines.min()),
                          "mean_cosine": float(cosines.mean()), "top10_overlap_mean": float(overlap.mean()),
                          "top10_overlap_min": float(overlap.min()), "items_per_s": speeds.get(dtype)}
        line = (f"| `{dtype}` | {model.precision} | {cosines.min():.6f} | {cosines.mean():.7f} | "
                f"{overlap.mean():.4f} | {overlap.min():.1f} |")
        print(line + (f" {speeds[dtype]:.1f} |" if args.speed else ""))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"cpu": cpu, "texts": len(texts), "precisions": figures}, handle, indent=2)


if __name__ == "__main__":
    main()
