"""Loading a checkpoint the same way for every family: fast tokenizer, weights in the chosen
dtype, on the chosen device, in eval mode (transformers' `from_pretrained`, a hub id or a local
directory; `HF_HOME` / `HF_HUB_OFFLINE` honoured as usual)."""

from __future__ import annotations

from typing import Any

import torch

from ..config.settings import SettingsError
from ..config.model_specs import ModelSpec

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
#: The DTYPE values naming bf16 (precision.py says what each means on the CPU).
BF16_NAMES = ("bfloat16", "bfloat16-weights")


def resolve_dtype(requested: str, device: str) -> torch.dtype:
    """The dtype weights load in for DTYPE (or a model's `dtype` option) `requested`.

    CUDA: `auto` is float16, the bf16 names bfloat16. CPU: `auto` and the bf16 names load float32
    weights, which precision.py then runs under bf16 autocast or converts to bfloat16 once they
    pass its self-check against float32. `float32` and `float16` are honoured everywhere."""
    cuda = device.startswith("cuda")
    if requested == "auto":
        return torch.float16 if cuda else torch.float32
    if requested in BF16_NAMES:
        return torch.bfloat16 if cuda else torch.float32
    return DTYPES[requested]


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def load_pretrained(
    spec: ModelSpec, device: str, dtype: str, auto_class: str, subfolder: str = ""
) -> tuple[Any, torch.nn.Module, torch.dtype]:
    """(tokenizer, model, torch dtype) of `spec.reference`: `AutoTokenizer` and the transformers
    class named `auto_class` (e.g. "AutoModel"), the model in `spec`'s dtype option or `dtype`
    (`resolve_dtype`), moved to `device`, in eval mode. `trust_remote_code` follows the model's
    option. raises SettingsError when the tokenizer is not a fast (tokenizer.json) one; other
    loading errors propagate (the family loader names the model).
    """
    import transformers

    options: dict[str, Any] = {"trust_remote_code": bool(spec.option("trust_remote_code", False))}
    if subfolder:
        options["subfolder"] = subfolder
    tokenizer = transformers.AutoTokenizer.from_pretrained(spec.reference, **options)
    if not getattr(tokenizer, "is_fast", False):
        raise SettingsError(f"model {spec.name!r}: a fast (tokenizer.json) tokenizer is required")
    torch_dtype = resolve_dtype(spec.option("dtype") or dtype, device)
    model = getattr(transformers, auto_class).from_pretrained(spec.reference, dtype=torch_dtype, **options)
    model.to(device).eval()
    return tokenizer, model, torch_dtype


def pad_token_id(tokenizer: Any) -> int:
    """The tokenizer's pad id, else its EOS id (decoders often have no pad token), else 0."""
    for token_id in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    return 0
