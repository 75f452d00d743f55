"""Tiny random-weight models built from transformers config classes, saved with save_pretrained,
with tokenizers trained on the spot with the `tokenizers` library. They stand in for every
architecture whose real weights cannot be downloaded here (the hub is unreachable)."""

from __future__ import annotations

import json
import os

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

CORPUS = [
    "a cat sits on the mat", "a kitten rests on a rug", "the stock market fell sharply today",
    "deep learning is a subset of machine learning", "the weather is nice and sunny",
    "neural networks are inspired by the human brain", "what is the capital of china",
    "paris is the capital of france", "embedding vectors represent meaning", "search and retrieval",
    "instruct given a web search query retrieve relevant passages that answer the query",
    "机器学习是人工智能的一个分支", "今天天气很好", "😀 emoji text 🚀", "über café naïve résumé",
] * 20

BERT_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
QWEN_EOS = "<|endoftext|>"
QWEN_SPECIAL = [QWEN_EOS, "<|im_start|>", "<|im_end|>"]
QWEN3_QUERY_PROMPT = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"


def _write_json(path: str, data) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)


def wordpiece_tokenizer(model_max_length: int = 128, **extra) -> PreTrainedTokenizerFast:
    """A BERT-style WordPiece tokenizer: lower-cases, `[CLS] text [SEP]`."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=300, special_tokens=BERT_SPECIAL))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=model_max_length, **extra,
    )


def bpe_tokenizer(model_max_length: int = 512) -> PreTrainedTokenizerFast:
    """A Qwen-style byte-level BPE tokenizer whose post-processor appends `<|endoftext|>`."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=QWEN_SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    eos_id = tok.token_to_id(QWEN_EOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"$A {QWEN_EOS}", pair=f"$A {QWEN_EOS} $B:1 {QWEN_EOS}:1", special_tokens=[(QWEN_EOS, eos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=QWEN_EOS, pad_token=QWEN_EOS, padding_side="left",
        model_max_length=model_max_length,
    )


def _st_files(path: str, pooling_config: dict, max_seq_length: int, prompts=None) -> None:
    _write_json(os.path.join(path, "modules.json"), [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    _write_json(os.path.join(path, "1_Pooling", "config.json"), pooling_config)
    _write_json(os.path.join(path, "sentence_bert_config.json"), {"max_seq_length": max_seq_length, "do_lower_case": False})
    config = {"__version__": {"sentence_transformers": "6.2.0"}, "prompts": prompts or {}, "default_prompt_name": None}
    _write_json(os.path.join(path, "config_sentence_transformers.json"), config)


def _save_bert(path: str, hidden: int, layers: int, heads: int, seed: int) -> None:
    from transformers import BertConfig, BertModel

    tokenizer = wordpiece_tokenizer()
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=2 * hidden, max_position_embeddings=128, initializer_range=0.2,
    )
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)


def build_bert(path: str, pooling: str = "cls", legacy: bool = False, max_seq_length: int = 64, seed: int = 0) -> str:
    """Tiny BertModel with a sentence-transformers pooling config (`legacy`: pooling_mode_* flags)."""
    _save_bert(path, hidden=32, layers=2, heads=4, seed=seed)
    if legacy:
        flags = {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens", "max": "pooling_mode_max_tokens"}
        pool_cfg = {"word_embedding_dimension": 32, **{flag: False for flag in flags.values()}, flags[pooling]: True}
    else:
        pool_cfg = {"embedding_dimension": 32, "pooling_mode": pooling, "include_prompt": True}
    _st_files(path, pool_cfg, max_seq_length)
    return path


def build_plain_bert(path: str, seed: int = 1) -> str:
    """Tiny BertModel without sentence-transformers files (pooling must come from options)."""
    _save_bert(path, hidden=24, layers=1, heads=2, seed=seed)
    return path


def build_qwen3_embedding(path: str, seed: int = 0) -> str:
    """Tiny Qwen3 embedder laid out like Qwen/Qwen3-Embedding-0.6B: last-token pooling, left
    padding, EOS appended by the tokenizer, the query instruction prompt."""
    from transformers import Qwen3Config, Qwen3Model

    tokenizer = bpe_tokenizer()
    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=512,
        initializer_range=0.2, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        architectures=["Qwen3ForCausalLM"],
    )
    Qwen3Model(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    _st_files(
        path, {"embedding_dimension": 32, "pooling_mode": "lasttoken", "include_prompt": True}, 512,
        prompts={"query": QWEN3_QUERY_PROMPT, "document": ""},
    )
    return path
