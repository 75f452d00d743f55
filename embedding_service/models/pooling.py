"""Pooling token states into one vector per input, as sentence-transformers' `Pooling` does.

All functions take `hidden` (batch, seq, dim) and `mask` (batch, seq) with 1 on real tokens and
return (batch, dim) float32. They are padding-side agnostic, so a text pools the same alone and in
a padded batch. torch is imported inside the functions: the modes' names are
`domain.model_kinds.POOLINGS`, which Gunicorn's master reads without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..domain.model_kinds import POOLINGS

if TYPE_CHECKING:  # pragma: no cover
    import torch


def cls_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """State of the first real token ([CLS]); with left padding, the first unpadded position."""
    import torch

    first = mask.to(torch.int32).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), first]


def lasttoken_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """State of the last real token (Qwen3-Embedding's EOS); works for left and right padding."""
    import torch

    positions = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
    last = (positions * mask.to(positions.dtype)).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of real-token states."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


def mean_sqrt_len_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum of real-token states divided by sqrt(number of real tokens)."""
    import torch

    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / torch.sqrt(weights.sum(dim=1).clamp(min=1e-9))


def max_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Element-wise max over real tokens (padding set to -1e9 first, as sentence-transformers)."""
    filled = hidden.masked_fill(mask.unsqueeze(-1) == 0, -1e9)
    return filled.max(dim=1).values


#: Pooling mode (sentence-transformers' names) -> function; the `pooling` model option's values.
POOLERS = {
    "cls": cls_pool,
    "mean": mean_pool,
    "max": max_pool,
    "lasttoken": lasttoken_pool,
    "mean_sqrt_len_tokens": mean_sqrt_len_pool,
}
if tuple(POOLERS) != POOLINGS:  # every mode the `pooling` option accepts has its function
    raise AssertionError("models.pooling.POOLERS and domain.model_kinds.POOLINGS disagree")


def pool(mode: str, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Pool with `mode` (a key of POOLERS) in float32: (batch, seq, dim) -> (batch, dim)."""
    return POOLERS[mode](hidden.float(), mask)
