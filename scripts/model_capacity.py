"""Forward-pass rate of the embedded default with no HTTP in the way (CONCURRENCY_ANALYSIS.md §3.4).

    .venv/bin/python scripts/model_capacity.py --threads 1 --batch 8,16
    ONEDNN_LINEAR=false .venv/bin/python scripts/model_capacity.py --threads 1 --batch 8,16   # MKL
    # two processes at once, 1 thread each:
    .venv/bin/python scripts/model_capacity.py --threads 1 --batch 16 & .venv/bin/python scripts/model_capacity.py --threads 1 --batch 16
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", default="8,16,32")
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from benchmark import make_texts
    from embedding_service.models.base import PromptChoice
    from embedding_service.registry import Registry
    from embedding_service.settings import Settings

    model = Registry.load(Settings.from_mapping({"LOG_LEVEL": "ERROR", "ONEDNN_LINEAR": os.environ.get("ONEDNN_LINEAR", "true")}), "cpu").models[0]
    items = model.prepare_texts(make_texts(1024), PromptChoice(), True, "right")
    for batch in (int(b) for b in args.batch.split(",")):
        done, began = 0, time.perf_counter()
        while time.perf_counter() - began < args.seconds:
            model.forward(items[done % 1000 : done % 1000 + batch])
            done += batch
        print(f"threads={args.threads} batch={batch}: {done / (time.perf_counter() - began):.1f} items/s", flush=True)


if __name__ == "__main__":
    main()
