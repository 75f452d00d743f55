"""CPU kernels for the loaded models: float32 linear layers through oneDNN or MKL, chosen per
machine (`CPU_KERNELS`: `auto`, `mkl`, `onednn`).

Chosen once per process (`choose_cpu_kernels`: the setting, or `auto`) and applied in one place,
at load, by `apply_cpu_kernels`; no model module knows about it. With `auto`, each model's own linear
shapes are timed through both libraries at load (`decide_kernels`, a fraction of a second):
oneDNN where it is clearly faster (ONEDNN_WINS), MKL where it is slower, and in between, where
start-up noise could tip the measurement, the CPU's vendor decides (oneDNN on AMD). No
vendor-specific path is on where it measures slower.

PyTorch runs a float32 `nn.Linear` on the CPU as an MKL `sgemm`. MKL picks its code path by CPU
vendor, and on AMD processors it leaves AVX-512 unused: on this project's AMD EPYC (AVX-512), a
(512 × 384) · (384 × 1536) product, the shape of a MiniLM feed-forward layer at batch 16, ran at
117 GFLOP/s through MKL and 265-274 GFLOP/s through oneDNN (CONCURRENCY_ANALYSIS.md). On an Intel
Xeon the same switch lost 13% to MKL. oneDNN is the library Inductor (`torch.compile`, CPU backend,
with freezing) routes the same layers through (`torch.ops.mkldnn._linear_pointwise`); calling it
directly gives most of that gain with no compilation step.

The layers themselves (OneDnnLinear, the bf16 layers, their switches) are in linear.py.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any, Callable, Mapping, Optional, Sequence

import torch

from .linear import (  # noqa: F401 - the layers are part of this module's interface
    BucketedLinear, OneDnnLinear, PackedBf16Linear, bucket_rows, onednn_available, onednn_eligible, packed_bf16_available,
    use_bucketed_linear, use_onednn_linear,
)

log = logging.getLogger("embedding_service.inference.cpu.kernels")

#: Row counts up to which `warm_kernels` builds every bucket's kernels at load: batches of short
#: inputs (32 inputs of 64 tokens), where a 1 ms kernel build would be felt. Larger batches build
#: theirs on first use, next to a forward pass of tens of milliseconds or more.
WARM_ROWS = 2048
#: Multiply-adds per warm-up product at most (MiniLM's largest layer at WARM_ROWS rows): a larger
#: layer (a big model's, a language-model head) is warmed only up to the rows that fit, so the
#: warm-up of a large model stays within seconds.
WARM_MACS = WARM_ROWS * 384 * 1536


def warm_kernels(
    module: torch.nn.Module, thread_counts: Sequence[int], max_rows: int = WARM_ROWS,
    layer_types: tuple[type, ...] = (OneDnnLinear,),
) -> int:
    """Build the kernels of every `bucket_rows` size up to `max_rows` (fewer above WARM_MACS),
    for each distinct shape of `layer_types` in `module` (OneDnnLinear, or the bf16 layers) and
    each torch thread count in `thread_counts`, so that memory is flat from the first request and
    no pass pays for a build. A float32 bf16 layer is warmed under bf16 autocast (the precision
    it serves in). Returns the kernels built (about 0.6 MB each: 240, about 140 MB,
    for MiniLM through oneDNN with 2 thread counts)."""
    shapes: dict[tuple, torch.nn.Module] = {}
    for layer in module.modules():
        if type(layer) in layer_types:
            shapes.setdefault((type(layer), layer.in_features, layer.out_features, layer.bias is not None), layer)
    sizes = sorted({bucket_rows(rows) for rows in range(1, max_rows + 1)})
    before, built = torch.get_num_threads(), 0
    try:
        with torch.inference_mode():
            for threads in sorted(set(thread_counts)):
                torch.set_num_threads(threads)
                for layer in shapes.values():
                    dtype = layer.weight.dtype
                    autocast = isinstance(layer, BucketedLinear) and not isinstance(layer, OneDnnLinear) and dtype == torch.float32
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                        for rows in sizes:
                            if rows > 16 and rows * layer.in_features * layer.out_features > WARM_MACS:
                                break
                            layer(torch.zeros(rows, layer.in_features, dtype=dtype))
                            built += 1
    finally:
        torch.set_num_threads(before)
    return built


#: The kernels CPU_KERNELS may name; `auto` is decided per model at load.
CPU_KERNELS = ("auto", "mkl", "onednn")
#: `auto` chooses oneDNN when it runs a model's linear layers at least this much faster than MKL
#: (its compiled kernels cost memory, about 140 MB per worker for MiniLM), and MKL when oneDNN is
#: slower; between the two the CPU's vendor decides (`decide_kernels`). On a quiet AMD EPYC oneDNN
#: measured 1.8-2.2x; while the other cores were busy (other workers loading, other processes) the
#: same measurement came out at 1.1-1.4x, so a single threshold would make the choice flip.
ONEDNN_WINS = 1.25
#: Vendors whose CPUs get oneDNN when the measurement is between 1.0 and ONEDNN_WINS: MKL picks
#: its code by vendor and leaves AVX-512 unused on AMD processors.
ONEDNN_VENDORS = ("AuthenticAMD",)
#: Rows (items x tokens) each linear shape is timed at: a batch of 16 short texts, the batches a
#: loaded server runs (at 128 rows MKL and oneDNN came within 1.1x of each other on the AMD EPYC
#: where oneDNN runs MiniLM's batches 1.8x faster).
MEASURE_ROWS = 512
#: Multiply-adds per timed product at most: a larger layer (a language-model head) is timed on
#: fewer rows (at least 16), so one model's measurement stays within a fraction of a second.
MEASURE_MACS = MEASURE_ROWS * 384 * 1536
#: Timed rounds per kernel and shape (after one untimed round that builds oneDNN's kernels); each
#: kernel's best round counts, and rounds alternate between the kernels, so noise from other
#: processes hits both alike. Rounds stop early once MEASURE_SECONDS (shared by a model's shapes)
#: have passed (at least 2 are run).
MEASURE_ROUNDS = 7
MEASURE_SECONDS = 1.0

Timer = Callable[[], float]


def choose_cpu_kernels(setting: str, device: str) -> str:
    """The kernels float32 linear layers use on `device`: `onednn`, `mkl` or `auto` (decided per
    model at load, `decide_kernels`) on the CPU, as CPU_KERNELS says; `default` on other devices
    (the device's own libraries). A forced choice is logged here, `auto`'s when it decides."""
    if device != "cpu":
        return "default"
    if setting not in CPU_KERNELS:
        raise ValueError(f"CPU_KERNELS must be one of {', '.join(CPU_KERNELS)}; got {setting!r}")
    if setting != "auto":
        log.info("CPU float32 linear layers: %s (CPU_KERNELS=%s)", setting, setting)
    return setting


def pick_faster(
    candidates: Mapping[str, Callable[[], Any]], rounds: int = MEASURE_ROUNDS, timer: Timer = time.perf_counter,
    budget: float = MEASURE_SECONDS,
) -> dict[str, float]:
    """The best time, in `timer` units, of each candidate callable: one untimed call each, then
    up to `rounds` rounds calling every candidate once in turn (at least 2 rounds; no new round
    starts after `budget` has passed). Returns {name: best seconds}."""
    for run in candidates.values():
        run()
    best = {name: float("inf") for name in candidates}
    started = timer()
    for done in range(rounds):
        for name, run in candidates.items():
            before = timer()
            run()
            best[name] = min(best[name], timer() - before)
        if done >= 1 and timer() - started >= budget:
            break
    return best


def _linear_shapes(module: torch.nn.Module) -> dict[tuple[int, int, bool], tuple[torch.nn.Module, int]]:
    """Each distinct (in, out, bias) of `module`'s switchable layers: (one such layer, count)."""
    shapes: dict[tuple[int, int, bool], tuple[torch.nn.Module, int]] = {}
    for layer in module.modules():
        if isinstance(layer, torch.nn.Linear) and onednn_eligible(layer):
            key = (layer.in_features, layer.out_features, layer.bias is not None)
            first, count = shapes.get(key, (layer, 0))
            shapes[key] = (first, count + 1)
    return shapes


def shape_candidates(module: torch.nn.Module) -> list[tuple[int, dict[str, Callable[[], None]]]]:
    """For each distinct switchable float32 linear shape of `module`: (how many layers have it,
    {`mkl`, `onednn`: one product of that shape on MEASURE_ROWS rows, fewer above MEASURE_MACS,
    through that library}). Empty when nothing can be switched."""
    out = []
    generator = torch.Generator().manual_seed(0)
    for (inputs, outputs, _), (layer, count) in _linear_shapes(module).items():
        rows = max(16, min(MEASURE_ROWS, MEASURE_MACS // (inputs * outputs)) // 16 * 16)
        x, weight, bias = torch.randn(rows, inputs, generator=generator), layer.weight.detach(), layer.bias
        bias = bias.detach() if bias is not None else None
        out.append((count, {
            "mkl": functools.partial(torch.nn.functional.linear, x, weight, bias),
            "onednn": functools.partial(torch.ops.mkldnn._linear_pointwise, x, weight, bias, "none", [], ""),
        }))
    return out


def measure_kernels(module: torch.nn.Module, timer: Timer = time.perf_counter) -> dict[str, float]:
    """Seconds one pass of `module`'s float32 linear layers takes through each library: each
    distinct shape timed alone (`pick_faster`, its share of MEASURE_SECONDS), times the number of
    layers with that shape."""
    shapes = shape_candidates(module)
    totals = {"mkl": 0.0, "onednn": 0.0}
    with torch.inference_mode():
        for count, candidates in shapes:
            best = pick_faster(candidates, timer=timer, budget=MEASURE_SECONDS / len(shapes))
            for name in totals:
                totals[name] += count * best[name]
    return totals


def decide_kernels(
    module: torch.nn.Module, timer: Timer = time.perf_counter,
    candidates: Optional[Mapping[str, Callable[[], Any]]] = None,
) -> tuple[str, str]:
    """`auto`: (`onednn` or `mkl`, the reason in words), from the two libraries' times on the
    model's own linear shapes at this process's torch thread count (`measure_kernels`; or the
    best times of the given `candidates`, one pass each): oneDNN when it is ONEDNN_WINS times as
    fast or more, MKL when it is slower, and in between oneDNN on ONEDNN_VENDORS' CPUs, MKL on
    others. MKL (torch's default) when oneDNN is unavailable or nothing can be switched."""
    if candidates is not None:
        best = pick_faster(candidates, timer=timer)
    elif not _linear_shapes(module):
        return "mkl", "no float32 linear layer on the CPU to switch"
    elif not onednn_available():
        return "mkl", "oneDNN's linear op is unavailable in this torch build"
    else:
        best = measure_kernels(module, timer=timer)
    ratio = best["mkl"] / best["onednn"] if best["onednn"] > 0 else float("inf")
    measured = (
        f"measured on this model's linear shapes at {torch.get_num_threads()} thread(s): MKL {best['mkl'] * 1e3:.2f} ms, "
        f"oneDNN {best['onednn'] * 1e3:.2f} ms ({ratio:.2f}x)"
    )
    if ratio >= ONEDNN_WINS:
        return "onednn", f"{measured}; oneDNN faster by {ONEDNN_WINS:.2f}x or more"
    if ratio < 1.0:
        return "mkl", f"{measured}; oneDNN slower, MKL kept"
    vendor = cpu_vendor()
    if vendor in ONEDNN_VENDORS:
        return "onednn", f"{measured}; within {ONEDNN_WINS:.2f}x, and MKL's code path for {vendor} CPUs leaves AVX-512 unused"
    return "mkl", f"{measured}; within {ONEDNN_WINS:.2f}x on a {vendor or 'CPU of unknown vendor'}: MKL kept"


def cpu_vendor() -> str:
    """The CPU's vendor id from /proc/cpuinfo (`AuthenticAMD`, `GenuineIntel`, ...), or ""."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return next((line.split(":", 1)[1].strip() for line in handle if line.startswith("vendor_id")), "")
    except OSError:
        return ""


def apply_cpu_kernels(
    module: torch.nn.Module, cpu_kernels: str, thread_counts: Sequence[int], warm: bool = True, *, name: str = "",
    timer: Timer = time.perf_counter,
) -> str:
    """Apply `cpu_kernels` to a loaded model, in place, and return the kernels it now uses
    (`onednn`, `mkl`, `bf16` or `default`). `auto` is decided first (`decide_kernels`, logged with
    its reason under the model's `name`). With `onednn`, its float32 linear layers are switched
    and (with `warm`) their kernels built for every torch thread count in `thread_counts`, so no
    request pays for a build; if oneDNN is unavailable the model stays on MKL. `bf16` (a model
    serving in bf16, precision.py): its linear layers run oneDNN's bf16 product on weights packed
    once (PackedBf16Linear; BucketedLinear, torch's own bf16 product, where that is unavailable or
    the weight is tied), with rows in buckets, warmed the same way."""
    if cpu_kernels == "bf16":
        switched, packed = use_bucketed_linear(module)
        kernels = warm_kernels(module, thread_counts, layer_types=(BucketedLinear, PackedBf16Linear)) if warm else 0
        log.info("model %s: %d linear layers in bf16 with row buckets (%d with weights packed for oneDNN), %d kernels "
                 "built", name or "?", switched, packed, kernels)
        return "bf16"
    if cpu_kernels == "auto":
        cpu_kernels, reason = decide_kernels(module, timer=timer)
        log.info("model %s: CPU float32 linear layers: %s (CPU_KERNELS=auto: %s)", name or "?", cpu_kernels, reason)
    if cpu_kernels != "onednn":
        return cpu_kernels
    switched = use_onednn_linear(module)
    kernels = warm_kernels(module, thread_counts) if switched and warm else 0
    log.info("%d linear layers through oneDNN, %d kernels built", switched, kernels)
    return "onednn" if switched else "mkl"
