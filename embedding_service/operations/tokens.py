"""Token-level operations, independent of the dialect (TEI's `/tokenize`, `/decode`, `/embed_all`).

- `tokenize`: each text as the model sees it (its prompt prepended, lower-cased where the model
  lower-cases) through the model's own tokenizer, not truncated; each token with its id, its text,
  whether it is a special token, and its byte offsets into that text's UTF-8 (TEI's offsets;
  null for special tokens, whose text is the token itself).
- `decode`: ids back to text with the model's tokenizer (special tokens skipped unless asked).
- `embed_tokens`: the model's last hidden states per token (no pooling, no normalisation), for
  models that offer them (`token_states`: the text family), a batched output of the model's
  batcher like its vectors; a request's token vectors are bounded by MAX_EMBED_ALL_TOKENS before
  any pass.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..observability.request_stats import timed
from ..inference.engine import Capability, Engine
from ..domain.errors import InvalidInput, LimitExceeded
from ..models.prompts import PromptChoice, ResolvedPrompt
from ..models.text_encoder import TextEncoder
from ..inference.registry import Registry
from .embed import check_batch_size, check_text_chars, note_usage
from .state import RequestBudgets
from .model_names import resolve


def model_texts(model: TextEncoder, texts: Sequence[str], prompt: PromptChoice) -> tuple[list[str], ResolvedPrompt]:
    """The texts as `model` sees them (prompt prepended, lower-cased where it lower-cases) and the
    resolved prompt; raises InvalidInput (400) for an unknown prompt."""
    resolved = model.prompt_for(prompt)
    return model.with_prompt(texts, resolved), resolved


def tokenize(
    engines: Registry, budgets: RequestBudgets, *, model_name: Optional[str], texts: Sequence[str],
    add_special_tokens: bool = True, prompt_name: Optional[str] = None, param: str = "inputs",
) -> list[list[dict]]:
    """`[[{"id", "text", "special", "start", "stop"}]]`, one list per text (see the module doc).

    raises ModelNotFound (404), InvalidInput (400: a model that cannot embed text, an unknown
    prompt), LimitExceeded (413: MAX_CLIENT_BATCH_SIZE, MAX_INPUT_CHARS, MAX_REQUEST_CHARS).
    """
    check_batch_size(len(texts), budgets.max_client_batch_size, param)
    engine = engines.get(resolve(engines, model_name), Capability.EMBED_TEXT)
    model = engine.text_encoder
    prompt = PromptChoice(prompt_name=prompt_name)
    seen, resolved = model_texts(model, texts, prompt)
    check_text_chars([len(text) for text in seen], budgets, param, resolved.note)
    with timed("tokenization"):
        encoded = model.tokenize(
            seen, add_special_tokens=add_special_tokens, return_offsets_mapping=True, return_special_tokens_mask=True,
            return_attention_mask=False, return_token_type_ids=False,
        )
        tokens = [_tokens(model, text, *row) for text, *row in zip(
            seen, encoded["input_ids"], encoded["offset_mapping"], encoded["special_tokens_mask"]
        )]
    note_usage(engine.name, len(texts), sum(len(row) for row in tokens))
    return tokens


def _tokens(model: TextEncoder, text: str, ids: Sequence[int], offsets: Sequence, special: Sequence[int]) -> list[dict]:
    """One text's tokens with byte offsets (the tokenizer gives character offsets)."""
    data = text.encode("utf-8")
    # Byte position of each character boundary: bytes_at[i] = len(text[:i].encode()).
    widths = np.fromiter((len(char.encode("utf-8")) for char in text), dtype=np.int64, count=len(text))
    bytes_at = np.concatenate([[0], np.cumsum(widths)])
    rows = []
    for token_id, (start, stop), is_special in zip(ids, offsets, special):
        if is_special:
            rows.append({"id": int(token_id), "text": model.tokenizer.convert_ids_to_tokens(int(token_id)),
                         "special": True, "start": None, "stop": None})
            continue
        first, last = int(bytes_at[start]), int(bytes_at[stop])
        rows.append({"id": int(token_id), "text": data[first:last].decode("utf-8", errors="replace"),
                     "special": False, "start": first, "stop": last})
    return rows


def decode(
    engines: Registry, budgets: RequestBudgets, *, model_name: Optional[str], ids: Sequence, skip_special_tokens: bool = True,
    param: str = "ids",
) -> list[str]:
    """One string per list of ids (`ids` is one list of ids, or a list of them).

    raises ModelNotFound (404), InvalidInput (400: a model that cannot embed text; an id outside its
    vocabulary, naming the list and the range), LimitExceeded (413: more lists than
    MAX_CLIENT_BATCH_SIZE).
    """
    single = bool(ids) and not isinstance(ids[0], list)
    rows = [list(ids)] if single else [list(row) for row in ids]
    check_batch_size(len(rows), budgets.max_client_batch_size, param)
    engine = engines.get(resolve(engines, model_name), Capability.EMBED_TEXT)
    model = engine.text_encoder
    for index, row in enumerate(rows):
        bad = next((t for t in row if not 0 <= t < model.vocab_rows), None)
        if bad is not None:
            where = param if single else f"{param}[{index}]"
            raise InvalidInput(
                f"{where}: token id {bad} is outside the vocabulary of model {engine.name!r} (0..{model.vocab_rows - 1})",
                param=param,
            )
    with timed("tokenization"):
        texts = model.tokenizer.batch_decode(rows, skip_special_tokens=skip_special_tokens)
    note_usage(engine.name, len(rows), sum(len(row) for row in rows))
    return list(texts)


def token_engine(engines: Registry, model_name: Optional[str]) -> Engine:
    """The model `/embed_all` uses: the one named, else the default text model, else the first
    model that gives token embeddings. raises ModelNotFound (404), InvalidInput (400) when it gives
    none."""
    if model_name:
        engine = engines.get(resolve(engines, model_name), Capability.EMBED_TEXT)
        if not engine.can(Capability.TOKEN_STATES):
            raise InvalidInput(
                f"model {engine.name!r} ({engine.model.kind}, family {getattr(engine.model.family, 'name', '?')}) gives no "
                "token embeddings; text-family models do", param="model",
            )
        return engine
    if engines.has(Capability.EMBED_TEXT) and engines.default(Capability.EMBED_TEXT).can(Capability.TOKEN_STATES):
        return engines.default(Capability.EMBED_TEXT)
    engine = next((e for e in engines.engines if e.can(Capability.TOKEN_STATES)), None)
    if engine is None:
        raise InvalidInput(f"no served model gives token embeddings (served: {', '.join(engines.names())})", param="model")
    return engine


def embed_tokens(
    engines: Registry, budgets: RequestBudgets, *, model_name: Optional[str], texts: Sequence[str], truncate: bool = True,
    direction: str = "right", prompt_name: Optional[str] = None, param: str = "inputs",
    token_ids: Optional[Sequence[Sequence[int]]] = None,
) -> tuple[list[np.ndarray], Engine, int]:
    """Each text's token vectors, (tokens, hidden size) float32, with the engine used and the
    tokens fed; `token_ids` instead of `texts`: pre-tokenised inputs, fed as given.

    raises ModelNotFound (404), InvalidInput (400: the model gives no token embeddings, an unknown
    prompt), LimitExceeded (413: MAX_CLIENT_BATCH_SIZE, MAX_INPUT_CHARS, MAX_REQUEST_CHARS, and
    MAX_EMBED_ALL_TOKENS token vectors), Unprocessable (422: over-long with `truncate` false).
    """
    check_batch_size(len(texts) if token_ids is None else len(token_ids), budgets.max_client_batch_size, param)
    engine = token_engine(engines, model_name)
    model = engine.text_encoder
    if token_ids is not None:
        with timed("tokenization"):
            items = model.prepare_ids(token_ids, truncate, direction, param=param)
    else:
        resolved = model.prompt_for(PromptChoice(prompt_name=prompt_name))
        check_text_chars([len(resolved.prefix) + len(text) for text in texts], budgets, param, resolved.note)
        with timed("tokenization"):
            items = model.prepare_texts(texts, resolved, truncate, direction, param=param)
    total = sum(len(item) for item in items)
    if total > budgets.max_embed_all_tokens:
        raise LimitExceeded(
            f"{param} make {total} token vectors; at most {budgets.max_embed_all_tokens} per request "
            "(MAX_EMBED_ALL_TOKENS)", param=param,
        )
    states, _ = engine.run_output(items, "token_states")
    note_usage(engine.name, len(items), total)
    return states, engine, total
