"""The linear layers the CPU kernels (acceleration.py) put in place of `nn.Linear`, and their switches.

`use_onednn_linear(module)` re-classes every plain float32 `nn.Linear` on the CPU as
`OneDnnLinear`: the same parameters and state dict, a forward through oneDNN. Outputs equal
MKL's to float32 rounding (relative 1e-6). Before switching, one layer's output is checked
against `torch.nn.functional.linear`; if the op is missing or disagrees, nothing is changed.
A model serving in bf16 (precision.py) runs its linear layers through oneDNN's bf16 inner product
with the weight cast to bf16 and reordered into oneDNN's layout once, at load (`PackedBf16Linear`),
instead of under autocast, which casts every float32 weight to bf16 on every pass: the same bf16
operands, 12-15% more items/s for MiniLM with two workers busy on the AMD EPYC measured
(CONCURRENCY_ANALYSIS.md), for a bf16 copy of each packed weight (half its float32 size). Its rows
are padded to the same buckets (`BucketedLinear`) so its kernels stay few as well.
"""

from __future__ import annotations

import functools
import logging
from typing import Optional

import torch

log = logging.getLogger("embedding_service.inference.cpu.kernels")

#: Rows oneDNN is told to expect when it packs a bf16 weight (a batch of 16 short texts); other
#: row counts use the same packed weight.
PACK_ROWS = 512
#: The largest relative difference accepted between oneDNN's and MKL's output in the load check.
CHECK_TOLERANCE = 1e-4
#: The same for oneDNN's packed bf16 product against autocast's: bf16's rounding.
BF16_TOLERANCE = 2e-2


def bucket_rows(rows: int) -> int:
    """`rows` rounded up to a multiple of 16 below 256 rows, above that to one of 8 sizes per
    octave (multiples of 2^(bit_length - 4)): 40 sizes up to 2048 rows, 64 up to 16384, and from
    256 rows on at most 1/8 of the rows (1/16 on average) padding."""
    step = max(16, 1 << max(rows.bit_length() - 4, 0))
    return -(-rows // step) * step


class BucketedLinear(torch.nn.Linear):
    """`nn.Linear` whose input rows are padded with zeros to `bucket_rows` and the padding's
    output dropped: input (..., in_features), output (..., out_features), in the layer's dtype
    (under bf16 autocast, bf16). Used for models serving in bf16 (precision.py).

    oneDNN, which runs torch's CPU bf16 products and OneDnnLinear's float32 ones, compiles and
    caches a kernel (about 0.6 MB, about 1 ms to build) for each input shape and thread count it
    meets. Batches of text have a new row count (items x tokens) nearly every time: without
    buckets a worker's memory grows with every new shape (MiniLM under bf16 autocast: +460 MB
    after 600 random batch shapes; 76 MB, flat, with buckets). Buckets bound the set of kernels per
    layer shape.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - nn.Linear's name
        rows = input.numel() // self.in_features
        if rows == 0:
            return torch.nn.functional.linear(input, self.weight, self.bias)
        flat = input.reshape(rows, self.in_features)
        padded = bucket_rows(rows)
        if padded != rows:
            flat = torch.nn.functional.pad(flat, (0, 0, 0, padded - rows))
        return self.product(flat)[:rows].reshape(*input.shape[:-1], self.out_features)

    def product(self, rows: torch.Tensor) -> torch.Tensor:
        """(rows, in_features) -> (rows, out_features)."""
        return torch.nn.functional.linear(rows, self.weight, self.bias)


class OneDnnLinear(BucketedLinear):
    """A BucketedLinear whose product calls oneDNN's inner product: float32 in and out, the
    weight as stored (out_features, in_features)."""

    def product(self, rows: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(rows, self.weight, self.bias, "none", [], "")


class PackedBf16Linear(BucketedLinear):
    """A BucketedLinear for a model serving in bf16 whose product runs oneDNN's bf16 inner product
    on a copy of its weight made once (`pack`): cast to bf16, as autocast casts it on every pass,
    and reordered into oneDNN's blocked layout. Input rows are cast to bf16, output bf16, as
    `torch.nn.functional.linear` gives under bf16 autocast. The float32 parameters stay as they
    are (state dict, tied weights); the packed copy costs half their size."""

    packed_weight: torch.Tensor
    packed_bias: Optional[torch.Tensor]

    def pack(self) -> None:
        """Make the bf16 copies of the weight (reordered) and the bias from the current parameters."""
        with torch.inference_mode():
            self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(self.weight.detach().to(torch.bfloat16), PACK_ROWS)
            self.packed_bias = None if self.bias is None else self.bias.detach().to(torch.bfloat16)

    def product(self, rows: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(
            rows.to(torch.bfloat16), self.packed_weight, self.packed_bias, "none", [], ""
        )


def _tied(module: torch.nn.Module) -> set[int]:
    """ids of the parameters `module` holds under more than one name (tied weights)."""
    seen: dict[int, int] = {}
    for _, parameter in module.named_parameters(remove_duplicate=False):
        seen[id(parameter)] = seen.get(id(parameter), 0) + 1
    return {key for key, count in seen.items() if count > 1}


def _layer_error(layer_class: type, autocast: bool) -> float:
    """Largest relative difference between a small `layer_class` layer's output and
    `torch.nn.functional.linear`'s (under bf16 autocast with `autocast`); raises RuntimeError or
    AttributeError where the op is missing or has no primitive for this CPU."""
    if not (torch.backends.mkldnn.enabled and torch.backends.mkldnn.is_available()):
        raise RuntimeError("this torch build has no oneDNN")
    generator = torch.Generator().manual_seed(0)
    layer = torch.nn.Linear(64, 48)
    inputs = torch.randn(5, 3, 64, generator=generator)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        expected = torch.nn.functional.linear(inputs, layer.weight, layer.bias).float()
        layer.__class__ = layer_class
        if isinstance(layer, PackedBf16Linear):
            layer.pack()
        actual = layer(inputs).float()
    if actual.shape != expected.shape:
        return float("inf")
    return float((actual - expected).abs().max() / expected.abs().max())


def _agrees(layer_class: type, autocast: bool, tolerance: float, what: str, instead: str) -> bool:
    try:
        error = _layer_error(layer_class, autocast)
    except (RuntimeError, AttributeError) as exc:  # op missing in this build, or no primitive for this CPU
        log.warning("%s unavailable, keeping %s: %s", what, instead, exc)
        return False
    if not error <= tolerance:
        log.warning("%s disagrees with %s (relative %.2g), keeping %s", what, instead, error, instead)
        return False
    return True


@functools.cache
def onednn_available() -> bool:
    """Whether this torch build has oneDNN and its float32 inner product gives MKL's result here
    (relative CHECK_TOLERANCE)."""
    return _agrees(OneDnnLinear, False, CHECK_TOLERANCE, "oneDNN linear", "MKL")


@functools.cache
def packed_bf16_available() -> bool:
    """Whether this torch build packs bf16 weights for oneDNN and its product gives torch's bf16
    autocast result here (relative BF16_TOLERANCE)."""
    return _agrees(PackedBf16Linear, True, BF16_TOLERANCE, "oneDNN packed bf16 linear", "autocast's linear")


def onednn_eligible(module: torch.nn.Module) -> bool:
    """Whether `module` is a plain float32 `nn.Linear` on the CPU (what OneDnnLinear replaces)."""
    weight = module.weight
    return type(module) is torch.nn.Linear and weight.dtype == torch.float32 and weight.device.type == "cpu"


def use_onednn_linear(module: torch.nn.Module) -> int:
    """Switch `module`'s plain float32 CPU `nn.Linear` layers to oneDNN, in place.

    Returns how many layers were switched (0 when oneDNN is unavailable or nothing is eligible:
    CUDA, float16/bfloat16 and nn.Linear subclasses are left as they are).
    """
    layers = [m for m in module.modules() if isinstance(m, torch.nn.Linear) and onednn_eligible(m)]
    if not layers or not onednn_available():
        return 0
    for layer in layers:
        layer.__class__ = OneDnnLinear
    return len(layers)


def use_bucketed_linear(module: torch.nn.Module, pack: bool = True) -> tuple[int, int]:
    """Re-class `module`'s plain CPU `nn.Linear` layers (any dtype), in place, for a model serving
    in bf16: as PackedBf16Linear (with `pack`, where oneDNN can, `packed_bf16_available`), else as
    BucketedLinear. A layer whose weight is tied to another parameter (a language-model head
    sharing the token embeddings) is not packed: its copy would be as large as the vocabulary.
    Returns (layers switched, of which packed)."""
    layers = [m for m in module.modules() if type(m) is torch.nn.Linear and m.weight.device.type == "cpu"]
    tied = _tied(module) if pack and layers and packed_bf16_available() else None
    packed = 0
    for layer in layers:
        if tied is not None and id(layer.weight) not in tied:
            layer.__class__ = PackedBf16Linear
            layer.pack()
            packed += 1
        else:
            layer.__class__ = BucketedLinear
    return len(layers), packed
