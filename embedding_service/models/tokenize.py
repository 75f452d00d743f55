"""Tokenising from many request threads at once, with no lock held while tokenising.

A Hugging Face fast tokenizer keeps its truncation settings (side, strategy, max length, stride)
as state on the Rust tokenizer and rewrites that state whenever a call asks for other settings,
so two threads calling one tokenizer with different truncation race. :class:`ConcurrentTokenizer`
keeps one clone of the tokenizer per truncation configuration: each clone is configured by its
first call (made under a lock, once) and after that only read, which the Rust tokenizer allows
from any number of threads at once (it releases the GIL while encoding). The configurations a
model uses are few (its window, both sides, the chunking stride, none), so so are the clones.

Tokenising costs time in proportion to the text, while a truncating model uses only its window.
:meth:`ConcurrentTokenizer.windows` finds, for each long text, a window of it (a prefix for right
truncation, a suffix for left) that gives the same tokens where the model keeps them, so that a
200,000-character input costs what a few thousand characters cost. The window is cut at a word
boundary (whitespace, else a change between letters, digits and other characters) and tokenised
without special tokens; it is accepted when its kept tokens are separated from the cut by at least
MARGIN_WORDS changes of pre-tokenizer word. Tokenizers split text into words (BERT's whitespace
and punctuation split, byte-level BPE's regular expression, SentencePiece's metaspace) and
tokenise each word alone, so a cut can only change the words next to it (a whitespace run that a
regular expression splits at its last newline, a digit run grouped from its start): words further
from the cut, and their tokens, are the whole text's. A window that does not qualify grows
(x GROWTH) and is tried again; a text whose windows never qualify (no word boundary near a cut, or
a tokenizer without a pre-tokenizer, which makes the whole text one word) is tokenised whole.
"""

from __future__ import annotations

import copy
import re
import threading
import unicodedata
from typing import Any, Optional, Sequence, Union

#: Characters per kept token in the first window tried (generous: English averages 4 to 5).
CHARS_PER_TOKEN = 8
#: Characters added to every first window.
WINDOW_SLACK = 256
#: Each retry multiplies the window by this.
GROWTH = 4
#: Changes of pre-tokenizer word required between the kept tokens and the cut.
MARGIN_WORDS = 3
#: The share of a window searched for whitespace to cut at (from its cut end).
CUT_SEARCH = 4
#: Characters examined one by one when a window has no whitespace to cut at.
KIND_SEARCH = 512
#: A word's end before whitespace (right cuts) and a word's start after whitespace (left cuts).
_WORD_END = re.compile(r"(?<=\S)[ \t\n\r]")
_WORD_START = re.compile(r"(?<=[ \t\n\r])\S")


class ConcurrentTokenizer:
    """Thread-safe calls of one fast tokenizer with per-call truncation.

    `tokenizer` stays the shared, never-reconfigured original (vocabulary, decode, special ids).
    """

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        #: Special tokens the tokenizer adds to one sequence (BERT's [CLS] and [SEP]: 2) and to a pair.
        self.specials = int(tokenizer.num_special_tokens_to_add(False))
        self.pair_specials = int(tokenizer.num_special_tokens_to_add(True))
        self._clones: dict[tuple, Any] = {}
        self._lock = threading.Lock()
        self._template: Optional[list] = None

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

    def encode_ids(
        self, texts: Sequence[str], *, truncation: bool = False, max_length: Optional[int] = None, side: str = "right",
    ) -> list[list[int]]:
        """Token ids of single texts, special tokens added: exactly `self(texts, truncation=...,
        max_length=..., side=...)["input_ids"]`, from the Rust tokenizer of the configured clone
        (`encode_batch_fast`, which skips the character offsets nobody here reads: 15% less than
        `encode_batch` for a 24-word text) without the Python wrapper's per-call work (input
        checks, truncation settings, BatchEncoding), which costs about as much as tokenising a
        short text. The first call of a configuration goes through the wrapper, which configures
        the clone."""
        key = ("longest_first", max_length, side, 0) if truncation else (None,)
        clone = self._clones.get(key)
        if clone is None:
            encoded = self(list(texts), truncation=truncation, max_length=max_length, side=side,
                           return_attention_mask=False, return_token_type_ids=False)
            return [list(ids) for ids in encoded["input_ids"]]
        rust = clone._tokenizer
        encode = getattr(rust, "encode_batch_fast", rust.encode_batch)  # the same ids, without character offsets
        return [encoding.ids for encoding in encode(list(texts), add_special_tokens=True)]

    def _clone(self, side: str) -> Any:
        from tokenizers import Tokenizer

        clone = copy.copy(self.tokenizer)
        clone._tokenizer = Tokenizer.from_str(self.tokenizer._tokenizer.to_str())
        clone.truncation_side = side
        return clone

    def ids(self, text: str) -> list[int]:
        """`text`'s token ids without special tokens and without truncation."""
        return list(self(text, add_special_tokens=False)["input_ids"])

    def pair(self, first: Sequence[int], second: Sequence[int]) -> tuple[list[int], list[int]]:
        """(ids, type ids) of a pair made of two sequences' token ids, already cut: the special
        tokens and type ids the tokenizer's post-processor puts around them, as it does after
        truncating a pair."""
        ids: list[int] = []
        types: list[int] = []
        for sequence, token, type_id in self._pair_template():
            part = [token] if sequence is None else (first if sequence == 0 else second)
            ids.extend(part)
            types.extend([type_id] * len(part))
        return ids, types

    def _pair_template(self) -> list[tuple[Optional[int], int, int]]:
        """The post-processor's pair layout, read off a tokenised pair of placeholders: for each
        special token (None, id, type id); for each sequence (0 or 1, -1, type id)."""
        if self._template is None:
            pair = self("x", "y").encodings[0]
            if not {0, 1} <= set(pair.sequence_ids):
                raise ValueError("the tokenizer gives no token for a placeholder")
            template: list[tuple[Optional[int], int, int]] = []
            for position, (sequence, token, type_id) in enumerate(zip(pair.sequence_ids, pair.ids, pair.type_ids)):
                if sequence is None:
                    template.append((None, token, type_id))
                elif position == 0 or pair.sequence_ids[position - 1] != sequence:
                    template.append((sequence, -1, type_id))
            self._template = template
        return self._template

    def windows(self, texts: Sequence[str], keep: int, side: str = "right") -> list[str]:
        """For each text, a window of it whose first `keep` tokens (side "right": a prefix) or last
        `keep` tokens (side "left": a suffix), special tokens not counted, are the whole text's;
        the text itself when it is short or when no window qualifies (module doc).

        Tokenising a window with truncation to `keep` tokens (plus special tokens) on `side` thus
        gives exactly the whole text's truncated tokens; a window holds more than `keep` tokens
        unless it is the whole text. Costs one tokenisation of each window tried, none for texts
        of at most `keep * CHARS_PER_TOKEN + WINDOW_SLACK` characters.
        """
        out = list(texts)
        if keep <= 0:
            return out
        size = keep * CHARS_PER_TOKEN + WINDOW_SLACK
        pending = [index for index, text in enumerate(out) if len(text) > size]
        while pending:
            trial = [(index, window) for index in pending if (window := _cut(texts[index], size, side)) is not None]
            settled = set()
            if trial:
                encoded = self(
                    [window for _, window in trial], add_special_tokens=False,
                    return_attention_mask=False, return_token_type_ids=False,
                )
                for row, (index, window) in enumerate(trial):
                    if _settled(encoded.word_ids(row), keep, side):
                        out[index] = window
                        settled.add(index)
            size *= GROWTH
            pending = [index for index in pending if index not in settled and len(texts[index]) > size]
        return out


def _kind(char: str) -> str:
    """The class a pre-tokenizer's runs are made of: space, letter, number (N), mark (M), other."""
    if char.isspace():
        return "space"
    if char.isalpha():
        return "letter"
    category = unicodedata.category(char)[0]
    return category if category in "NM" else "other"


def _cut(text: str, size: int, side: str) -> Optional[str]:
    """The window of `text` of at most `size` characters (a prefix for "right", a suffix for
    "left") cut where a word ends: between a non-space and one of " \\t\\n\\r", searched in the
    window's last (right) or first (left) 1/CUT_SEARCH; else between two characters of different
    kinds, neither a space nor the second a combining mark, searched in KIND_SEARCH characters.
    None when neither is there."""
    span = max(1, size // CUT_SEARCH)
    if side == "right":
        found = None
        for found in _WORD_END.finditer(text, size - span, size + 1):
            pass
        if found is not None:
            return text[: found.start()]
        candidates = range(size, max(1, size - KIND_SEARCH), -1)
    else:
        start = len(text) - size
        found = _WORD_START.search(text, start, start + span)
        if found is not None:
            return text[found.start():]
        candidates = range(max(start, 1), min(start + KIND_SEARCH, len(text)))
    for position in candidates:
        before, after = _kind(text[position - 1]), _kind(text[position])
        if before != after and "space" not in (before, after) and after != "M":
            return text[:position] if side == "right" else text[position:]
    return None


def _settled(words: list, keep: int, side: str) -> bool:
    """Whether at least MARGIN_WORDS changes of word separate the kept tokens from the window's
    cut end (`words`: each token's pre-tokenizer word; None for an added token, a word itself)."""
    if len(words) <= keep:
        return False
    tail = words[keep - 1:] if side == "right" else words[: len(words) - keep + 1][::-1]
    changes = sum(1 for a, b in zip(tail, tail[1:]) if a != b or a is None)
    return changes >= MARGIN_WORDS
