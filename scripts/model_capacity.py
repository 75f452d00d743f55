"""Forward-pass rate of the embedded default with no HTTP in the way (CONCURRENCY_ANALYSIS.md §3.4).

    .venv/bin/python scripts/model_capacity.py --threads 1 --batch 8,16     # the defaults (CPU_KERNELS, DTYPE auto)
    CPU_KERNELS=mkl DTYPE=float32 .venv/bin/python scripts/model_capacity.py --threads 1 --batch 8,16   # MKL
    CPU_KERNELS=onednn DTYPE=float32 .venv/bin/python scripts/model_capacity.py --threads 1 --batch 8,16
    DTYPE=bfloat16 .venv/bin/python scripts/model_capacity.py --threads 1 --batch 8,16    # bf16 autocast
    # two processes at once, 1 thread each:
    .venv/bin/python scripts/model_capacity.py --threads 1 --batch 16 & .venv/bin/python scripts/model_capacity.py --threads 1 --batch 16
    # one MiniLM feed-forward product, MKL against oneDNN, and oneDNN's memory per cached kernel:
    .venv/bin/python scripts/model_capacity.py --threads 1 --gemm
    # resident memory over 600 forward passes of random batch shapes (kernels per shape):
    DTYPE=bfloat16 .venv/bin/python scripts/model_capacity.py --threads 1 --memory 600
    # bf16 linear layers under autocast instead of packed weights (A/B against the default `packed`):
    DTYPE=bfloat16 .venv/bin/python scripts/model_capacity.py --threads 1 --batch 8 --bf16 autocast
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def gemm(seconds: float) -> None:
    """(512 x 384) . (384 x 1536) through MKL (F.linear) and oneDNN; then the resident memory
    each new row count adds to oneDNN's kernel cache (40 row counts, after malloc_trim)."""
    import torch

    x, w, b = torch.randn(512, 384), torch.randn(1536, 384), torch.randn(1536)
    runs = {
        "MKL (torch.nn.functional.linear)": lambda: torch.nn.functional.linear(x, w, b),
        "oneDNN (mkldnn._linear_pointwise)": lambda: torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], ""),
    }
    for label, run in runs.items():
        for _ in range(5):
            run()
        done, began = 0, time.perf_counter()
        while time.perf_counter() - began < seconds / 2:
            run()
            done += 1
        elapsed = (time.perf_counter() - began) / done
        print(f"{label}: {elapsed * 1e3:.2f} ms, {2 * 512 * 384 * 1536 / elapsed / 1e9:.0f} GFLOP/s", flush=True)
    trim = ctypes.CDLL("libc.so.6").malloc_trim

    def rss_kib() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

    with torch.inference_mode():
        torch.ops.mkldnn._linear_pointwise(torch.randn(99, 384), w, b, "none", [], "")
        trim(0)
        before = rss_kib()
        for rows in range(100, 140):
            torch.ops.mkldnn._linear_pointwise(torch.randn(rows, 384), w, b, "none", [], "")
        trim(0)
    print(f"oneDNN kernel cache: {(rss_kib() - before) / 40:.0f} KiB per new row count")


def undo_bf16_kernels(model, variant: str) -> None:
    """For an A/B of the bf16 kernels: `packed` (as loaded: weights packed for oneDNN once) or
    `autocast` (autocast's own linear, every weight cast to bf16 on every pass)."""
    from embedding_service.inference.cpu.linear import BucketedLinear, PackedBf16Linear

    if variant == "autocast":
        for layer in model.model.modules():
            if type(layer) is PackedBf16Linear:
                layer.__class__ = BucketedLinear


def memory(model, passes: int) -> None:
    """Resident memory (after malloc_trim) after load and every passes/4 forward passes of random
    batch shapes (1-32 texts of 3-60 words): whether compiled kernels pile up with new shapes."""
    import random

    from benchmark import make_texts
    from embedding_service.inference import compute
    from embedding_service.models.prompts import PromptChoice

    trim = ctypes.CDLL("libc.so.6").malloc_trim

    def rss_mib() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 2**20

    rng, texts = random.Random(0), make_texts(2048)
    trim(0)
    print(f"{model.precision}, CPU kernels {model.cpu_kernels}: after load {rss_mib()} MiB", flush=True)
    for done in range(1, passes + 1):
        words = rng.randint(3, 60)
        batch = [" ".join(text.split()[:words]) for text in texts[done:done + rng.randint(1, 32)]]
        compute.run(model.forward, model.prepare_texts(batch, PromptChoice(), True, "right"))
        if done % max(1, passes // 4) == 0:
            trim(0)
            print(f"after {done} passes of random shapes: {rss_mib()} MiB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", default="8,16,32")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--gemm", action="store_true", help="time one linear product instead of the model")
    parser.add_argument("--memory", type=int, default=0, metavar="N", help="resident memory over N passes of random shapes")
    parser.add_argument("--bf16", default="packed", choices=("packed", "autocast"),
                        help="with DTYPE=bfloat16: weights packed for oneDNN (as served) or autocast's linear")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.gemm:
        gemm(args.seconds)
        return
    from benchmark import make_texts
    from embedding_service.inference import compute
    from embedding_service.models.prompts import PromptChoice
    from embedding_service.inference.registry import Registry
    from embedding_service.inference.runtime import Runtime
    from embedding_service.config.settings import Settings

    env = {k: v for k, v in os.environ.items() if k in ("CPU_KERNELS", "ONEDNN_LINEAR", "DTYPE")}
    settings = Settings.from_mapping({"LOG_LEVEL": "ERROR", **env})
    model = Registry.load(settings, Runtime.local(settings, "cpu")).first.text
    if model.cpu_kernels == "bf16":
        undo_bf16_kernels(model, args.bf16)
    if args.memory:
        memory(model, args.memory)
        return
    items = model.prepare_texts(make_texts(1024), PromptChoice(), True, "right")
    for batch in (int(b) for b in args.batch.split(",")):
        done, began = 0, time.perf_counter()
        while time.perf_counter() - began < args.seconds:
            compute.run(model.forward, items[done % 1000 : done % 1000 + batch])
            done += batch
        print(f"threads={args.threads} batch={batch}: {done / (time.perf_counter() - began):.1f} items/s", flush=True)


if __name__ == "__main__":
    main()
