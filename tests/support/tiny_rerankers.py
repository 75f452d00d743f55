"""Tiny random-weight rerankers: a BERT and an XLM-R sequence-classification cross-encoder, and a
Qwen3 causal LM laid out like Qwen/Qwen3-Reranker-0.6B (chat special tokens, "yes"/"no")."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from support.tiny_models import CORPUS, wordpiece_tokenizer

RERANK_CORPUS = CORPUS + ["judge whether the document meets the requirements query instruct yes no"] * 20
QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]


def _byte_bpe(special: list[str], vocab_size: int = 400) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(RERANK_CORPUS, trainer)
    return tok


def build_bert_cross_encoder(path: str, seed: int = 0) -> str:
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = wordpiece_tokenizer(model_max_length=64, model_input_names=["input_ids", "token_type_ids", "attention_mask"])
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=128, num_labels=1, initializer_range=0.3,
    )
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_xlmr_cross_encoder(path: str, seed: int = 0) -> str:
    """RoBERTa-style pairs: `<s> A </s></s> B </s>`, pad id 1, no token types."""
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = _byte_bpe(special)
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>", pad_token="<pad>",
        unk_token="<unk>", mask_token="<mask>", model_max_length=64,
    )
    torch.manual_seed(seed)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=66, type_vocab_size=1, pad_token_id=tokenizer.pad_token_id, num_labels=1,
        initializer_range=0.3,
    )
    XLMRobertaForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_qwen3_reranker(path: str, seed: int = 0) -> str:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tok = _byte_bpe(QWEN_SPECIAL)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", padding_side="left", model_max_length=512,
    )
    tokenizer.add_tokens(["yes", "no"])
    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, max_position_embeddings=512, initializer_range=0.3, tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, architectures=["Qwen3ForCausalLM"],
    )
    Qwen3ForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
