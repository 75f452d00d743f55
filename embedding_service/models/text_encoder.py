"""The text-encoder interface and the text preparation every text family inherits: prompts,
lower-casing, truncation on either side, overflow chunks and token-id inputs, tokenised without a
lock (tokenize.py)."""

from __future__ import annotations

from typing import Optional, Sequence

from ..domain.errors import InvalidInput, Unprocessable
from .interfaces import Model
from .items import TokenIds
from typing import Union

from .prompts import PromptChoice, PromptRules, ResolvedPrompt, prompt_prefix

#: A prompt that adds nothing.
NO_PREFIX = ResolvedPrompt()
#: A request that asks for no prompt.
NO_PROMPT = PromptChoice()
#: Overlap between neighbouring chunks of a long document, as a fraction of the model's window.
CHUNK_OVERLAP = 0.25


class TextEncoder(Model):
    """A model that embeds text (text models, and the text tower of multimodal models).

    Subclasses call `set_tokenizer` with a fast tokenizer and set `max_length`,
    `vocab_rows` and the prompt attributes below in their constructor; preparing inputs is shared
    and thread-safe without a lock (models/tokenize.py).
    """

    takes_instruction = True
    #: (scale, bias) of the model's own sigmoid text-image score, sigmoid(cos * scale + bias)
    #: (SigLIP), which ranking uses instead of the plain cosine; None for plain cosine.
    similarity_scale: Optional[tuple[float, float]] = None
    vocab_rows: int = 0
    prompts: dict = {}
    default_prompt_name: Optional[str] = None
    instruction_template: Optional[str] = None
    lowercase: bool = False

    def resolve_prompt(self, choice: PromptChoice) -> str:
        """The prefix for this request (:func:`prompts.prompt_prefix` with this model's rules);
        raises InvalidInput (400) naming the field."""
        if choice == NO_PROMPT and not self.default_prompt_name:
            return ""  # the usual request: nothing asked, nothing by default
        return prompt_prefix(choice, PromptRules(self.prompts, self.default_prompt_name, self.instruction_template), self.name)

    def prompt_for(self, choice: PromptChoice) -> ResolvedPrompt:
        """`choice` resolved once for a request: its prefix, and what the prefix is for messages."""
        prefix = self.resolve_prompt(choice)
        if not prefix:
            return NO_PREFIX
        return ResolvedPrompt(prefix, "instruction included" if choice.instruction is not None else "prompt included")

    def with_prompt(self, texts: Sequence[str], prompt: Union[PromptChoice, ResolvedPrompt]) -> list[str]:
        """The texts as the model sees them: the prompt's prefix before each, lower-cased where the
        model lower-cases. A PromptChoice is resolved here; a ResolvedPrompt is used as it is."""
        prefix = prompt.prefix if isinstance(prompt, ResolvedPrompt) else self.resolve_prompt(prompt)
        inputs = [prefix + text for text in texts] if prefix else list(texts)
        return [text.lower() for text in inputs] if self.lowercase else inputs

    def prepare_texts(
        self, texts: Sequence[str], prompt: Union[PromptChoice, ResolvedPrompt], truncate: bool, direction: str,
        param: str = "input",
    ) -> list[TokenIds]:
        """Apply the prompt (and lower-casing where the model wants it) and tokenise with the
        tokenizer's own truncation at `max_length` on `direction` ("left" or "right"). With
        `truncate`, a long text is tokenised through a window of it that gives the same tokens
        (`ConcurrentTokenizer.windows`), so its cost does not grow with its length.

        Without `truncate` an over-long input raises Unprocessable (422) naming it and the limit;
        an unknown prompt raises InvalidInput (400).
        """
        inputs = self.with_prompt(texts, prompt)
        if truncate:
            inputs = self.tokenize.windows(inputs, self.max_length - self.tokenize.specials, direction)
        encoded = self.tokenize.encode_ids(
            inputs, truncation=truncate, max_length=self.max_length if truncate else None, side=direction
        )
        items = [TokenIds(ids) for ids in encoded]
        if not truncate:
            self._check_lengths(items, param)
        return items

    def prepare_chunks(
        self, texts: Sequence[str], prompt: Union[PromptChoice, ResolvedPrompt], max_chunks: int,
        param: str = "documents",
    ) -> tuple[list[TokenIds], list[int]]:
        """Tokenise with the tokenizer's own overflow windows: a text longer than `max_length`
        becomes up to `max_chunks` windows overlapping by CHUNK_OVERLAP of the window, each with
        the model's special tokens. Returns the items and, for each, the index of its text. Only
        the part of a text that `max_chunks` windows can hold is tokenised
        (`ConcurrentTokenizer.windows`, with `max_chunks * max_length` tokens kept)."""
        inputs = self.tokenize.windows(self.with_prompt(texts, prompt), max_chunks * self.max_length, "right")
        encoded = self.tokenize(
            inputs,
            truncation=True,
            max_length=self.max_length,
            stride=int(self.max_length * CHUNK_OVERLAP),
            return_overflowing_tokens=True,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        items, owners, seen = [], [], {}
        for ids, owner in zip(encoded["input_ids"], encoded["overflow_to_sample_mapping"]):
            seen[owner] = seen.get(owner, 0) + 1
            if seen[owner] <= max_chunks:
                items.append(TokenIds(list(ids)))
                owners.append(int(owner))
        return items, owners

    def prepare_ids(
        self, ids: Sequence[Sequence[int]], truncate: bool, direction: str, param: str = "input"
    ) -> list[TokenIds]:
        """Token-id inputs, fed as given (no special tokens added); raises InvalidInput (400) for ids
        outside the vocabulary, Unprocessable (422) for over-long inputs without truncation."""
        items = []
        for index, row in enumerate(ids):
            bad = next((t for t in row if not 0 <= t < self.vocab_rows), None)
            if bad is not None:
                raise InvalidInput(
                    f"{param}[{index}]: token id {bad} is outside the vocabulary of model {self.name!r} "
                    f"(0..{self.vocab_rows - 1})",
                    param=param,
                )
            row = list(row)
            if len(row) > self.max_length and truncate:
                row = row[-self.max_length :] if direction == "left" else row[: self.max_length]
            items.append(TokenIds(row))
        if not truncate:
            self._check_lengths(items, param)
        return items

    def _check_lengths(self, items: Sequence[TokenIds], param: str) -> None:
        for index, item in enumerate(items):
            if len(item) > self.max_length:
                raise Unprocessable(
                    f"{param}[{index}] has {len(item)} tokens; model {self.name!r} accepts at most "
                    f"{self.max_length} (send truncate: true to cut it)",
                    param=param,
                )
