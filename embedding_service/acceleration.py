"""CPU kernels for the loaded models: float32 linear layers through oneDNN or MKL.

Chosen once per process (`choose_cpu_kernels`, from `ONEDNN_LINEAR`) and applied in one place,
at load, by `accelerate`; no model module knows about it.

PyTorch runs a float32 `nn.Linear` on the CPU as an MKL `sgemm`. MKL picks its code path by CPU
vendor, and on AMD processors it leaves AVX-512 unused: on this project's AMD EPYC (AVX-512), a
(512 × 384) · (384 × 1536) product, the shape of a MiniLM feed-forward layer at batch 16, ran at
117 GFLOP/s through MKL and 265-274 GFLOP/s through oneDNN (CONCURRENCY_ANALYSIS.md).
oneDNN is the library Inductor (`torch.compile`, CPU backend, with freezing) routes the same
layers through (`torch.ops.mkldnn._linear_pointwise`); calling it directly gives most of that gain
with no compilation step.

`use_onednn_linear(module)` re-classes every plain float32 `nn.Linear` on the CPU as
`OneDnnLinear`: the same parameters and state dict, a forward through oneDNN. Outputs equal
MKL's to float32 rounding (relative 1e-6). Before switching, one layer's output is checked
against `torch.nn.functional.linear`; if the op is missing or disagrees, nothing is changed.
"""

from __future__ import annotations

import functools
import logging
from typing import Sequence

import torch

log = logging.getLogger("embedding_service.acceleration")

#: The largest relative difference accepted between oneDNN's and MKL's output in the load check.
CHECK_TOLERANCE = 1e-4


def bucket_rows(rows: int) -> int:
    """`rows` rounded up to a multiple of 16 below 256 rows, above that to one of 8 sizes per
    octave (multiples of 2^(bit_length - 4)): 40 sizes up to 2048 rows, 64 up to 16384, and from
    256 rows on at most 1/8 of the rows (1/16 on average) padding."""
    step = max(16, 1 << max(rows.bit_length() - 4, 0))
    return -(-rows // step) * step


class OneDnnLinear(torch.nn.Linear):
    """`nn.Linear` whose forward calls oneDNN's inner product: input (..., in_features) float32,
    output (..., out_features) float32, the weight as stored (out_features, in_features).

    oneDNN compiles and caches a kernel (about 0.6 MB, about 1 ms to build) for each input shape
    and thread count it meets. Batches of text have a new row count (items x tokens) nearly every
    time, so the rows are padded with zeros to `bucket_rows` and the padding's output dropped: a
    bounded set of kernels per layer shape instead of one per row count.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - nn.Linear's name
        rows = input.numel() // self.in_features
        if rows == 0:
            return torch.nn.functional.linear(input, self.weight, self.bias)
        flat = input.reshape(rows, self.in_features)
        padded = bucket_rows(rows)
        if padded != rows:
            flat = torch.nn.functional.pad(flat, (0, 0, 0, padded - rows))
        output = torch.ops.mkldnn._linear_pointwise(flat, self.weight, self.bias, "none", [], "")
        return output[:rows].reshape(*input.shape[:-1], self.out_features)


def _eligible(module: torch.nn.Module) -> bool:
    weight = module.weight
    return type(module) is torch.nn.Linear and weight.dtype == torch.float32 and weight.device.type == "cpu"


@functools.cache
def onednn_available() -> bool:
    """Whether this torch build has oneDNN and its inner product gives MKL's result here."""
    if not (torch.backends.mkldnn.enabled and torch.backends.mkldnn.is_available()):
        return False
    try:
        generator = torch.Generator().manual_seed(0)
        layer = torch.nn.Linear(64, 48)
        inputs = torch.randn(5, 3, 64, generator=generator)
        with torch.inference_mode():
            expected = torch.nn.functional.linear(inputs, layer.weight, layer.bias)
            layer.__class__ = OneDnnLinear
            actual = layer(inputs)
    except (RuntimeError, AttributeError) as exc:  # op missing in this build, or no primitive for this CPU
        log.warning("oneDNN linear unavailable, keeping MKL: %s", exc)
        return False
    error = float((actual - expected).abs().max() / expected.abs().max())
    if actual.shape != expected.shape or not error <= CHECK_TOLERANCE:
        log.warning("oneDNN linear disagrees with MKL (relative %.2g), keeping MKL", error)
        return False
    return True


def use_onednn_linear(module: torch.nn.Module) -> int:
    """Switch `module`'s plain float32 CPU `nn.Linear` layers to oneDNN, in place.

    Returns how many layers were switched (0 when oneDNN is unavailable or nothing is eligible:
    CUDA, float16/bfloat16 and nn.Linear subclasses are left as they are).
    """
    layers = [m for m in module.modules() if isinstance(m, torch.nn.Linear) and _eligible(m)]
    if not layers or not onednn_available():
        return 0
    for layer in layers:
        layer.__class__ = OneDnnLinear
    return len(layers)


#: Row counts up to which `warm_kernels` builds every bucket's kernels at load: batches of short
#: inputs (32 inputs of 64 tokens), where a 1 ms kernel build would be felt. Larger batches build
#: theirs on first use, next to a forward pass of tens of milliseconds or more.
WARM_ROWS = 2048


def warm_kernels(module: torch.nn.Module, thread_counts: Sequence[int], max_rows: int = WARM_ROWS) -> int:
    """Build oneDNN's kernels for every `bucket_rows` size up to `max_rows`, for each distinct
    OneDnnLinear shape in `module` and each torch thread count in `thread_counts`, so that memory
    is flat from the first request and no pass pays for a build. Returns the kernels built
    (about 0.6 MB each: 240, about 140 MB, for MiniLM with 2 thread counts)."""
    shapes: dict[tuple, torch.nn.Module] = {}
    for layer in module.modules():
        if type(layer) is OneDnnLinear:
            shapes.setdefault((layer.in_features, layer.out_features, layer.bias is not None), layer)
    sizes = sorted({bucket_rows(rows) for rows in range(1, max_rows + 1)})
    before = torch.get_num_threads()
    try:
        with torch.inference_mode():
            for threads in sorted(set(thread_counts)):
                torch.set_num_threads(threads)
                for layer in shapes.values():
                    for rows in sizes:
                        layer(torch.zeros(rows, layer.in_features))
    finally:
        torch.set_num_threads(before)
    return len(shapes) * len(sizes) * len(set(thread_counts))


def choose_cpu_kernels(onednn_linear: bool, device: str) -> str:
    """The kernels float32 linear layers use on `device`: `onednn` or `mkl` on the CPU, as
    ONEDNN_LINEAR says; `default` on other devices (the device's own libraries). Logged."""
    if device != "cpu":
        return "default"
    choice = "onednn" if onednn_linear else "mkl"
    log.info("CPU float32 linear layers: %s (ONEDNN_LINEAR=%s)", choice, str(onednn_linear).lower())
    return choice


def accelerate(module: torch.nn.Module, cpu_kernels: str, thread_counts: Sequence[int], warm: bool = True) -> int:
    """Apply `cpu_kernels` to a loaded model, in place: with `onednn`, switch its float32 linear
    layers and (with `warm`) build their kernels for every torch thread count in `thread_counts`,
    so no request pays for a build. Returns the layers switched (0 for `mkl` and `default`)."""
    if cpu_kernels != "onednn":
        return 0
    switched = use_onednn_linear(module)
    kernels = warm_kernels(module, thread_counts) if switched and warm else 0
    log.info("%d linear layers through oneDNN, %d kernels built", switched, kernels)
    return switched
