"""Tokenising from many request threads at once, with no lock held while tokenising.

A Hugging Face fast tokenizer keeps its truncation settings (side, strategy, max length, stride)
as state on the Rust tokenizer and rewrites that state whenever a call asks for other settings,
so two threads calling one tokenizer with different truncation race. :class:`ConcurrentTokenizer`
keeps one clone of the tokenizer per truncation configuration: each clone is configured by its
first call (made under a lock, once) and after that only read, which the Rust tokenizer allows
from any number of threads at once (it releases the GIL while encoding). The configurations a
model uses are few (its window, both sides, the chunking stride, none), so so are the clones.
"""

from __future__ import annotations

import copy
import threading
from typing import Any, Optional, Union


class ConcurrentTokenizer:
    """Thread-safe calls of one fast tokenizer with per-call truncation.

    `tokenizer` stays the shared, never-reconfigured original (vocabulary, decode, special ids).
    """

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self._clones: dict[tuple, Any] = {}
        self._lock = threading.Lock()

    def __call__(
        self,
        text: Any,
        text_pair: Any = None,
        *,
        truncation: Union[bool, str] = False,
        max_length: Optional[int] = None,
        side: str = "right",
        stride: int = 0,
        **options: Any,
    ) -> Any:
        """`tokenizer(text, text_pair, truncation=..., max_length=..., stride=..., padding=False,
        **options)` with `truncation_side = side`; returns the tokenizer's BatchEncoding.

        `truncation`: False, True (longest first), or a strategy name ("only_second",
        "longest_first"); `max_length` tokens (special tokens included); `side` "left" or "right".
        """
        strategy = "longest_first" if truncation is True else (truncation or None)
        key = (strategy, max_length, side, stride) if strategy else (None,)
        kwargs = dict(options, padding=False, verbose=False)
        if strategy:
            kwargs.update(truncation=strategy, max_length=max_length, stride=stride)
        else:
            kwargs.update(truncation=False)
        args = (text,) if text_pair is None else (text, text_pair)
        clone = self._clones.get(key)
        if clone is None:
            with self._lock:
                clone = self._clones.get(key)
                if clone is None:
                    clone = self._clone(side)
                    result = clone(*args, **kwargs)  # sets the clone's truncation state, once
                    self._clones[key] = clone
                    return result
        return clone(*args, **kwargs)

    def _clone(self, side: str) -> Any:
        from tokenizers import Tokenizer

        clone = copy.copy(self.tokenizer)
        clone._tokenizer = Tokenizer.from_str(self.tokenizer._tokenizer.to_str())
        clone.truncation_side = side
        return clone

    def ids(self, text: str) -> list[int]:
        """`text`'s token ids without special tokens and without truncation."""
        return list(self(text, add_special_tokens=False)["input_ids"])
