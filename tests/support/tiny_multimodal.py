"""Tiny random-weight SigLIP 2, SigLIP and CLIP directories: model (save_pretrained), image
processor config and a tokenizer trained on the spot."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from support.tiny_models import CORPUS

TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)


def _bpe(special: list[str], template: str, lowercase: bool, **wrap) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token=wrap.get("unk_token")))
    if lowercase:
        tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    tokens = sorted({t for t in template.split() if t in special}, key=special.index)
    tok.post_processor = processors.TemplateProcessing(single=template, special_tokens=[(t, tok.token_to_id(t)) for t in tokens])
    return PreTrainedTokenizerFast(tokenizer_object=tok, **wrap)


def siglip_tokenizer() -> PreTrainedTokenizerFast:
    """SigLIP-style: `text </s>`, pad `<pad>`, 64 positions; case kept (the service lower-cases)."""
    return _bpe(["<pad>", "</s>", "<unk>"], "$A </s>", False, pad_token="<pad>", eos_token="</s>",
                unk_token="<unk>", model_max_length=64)


def clip_tokenizer() -> PreTrainedTokenizerFast:
    """CLIP-style: lower-cases, `<|startoftext|> text <|endoftext|>`, pads with EOS, 77 positions."""
    bos, eos = "<|startoftext|>", "<|endoftext|>"
    return _bpe([bos, eos, "<unk>"], f"{bos} $A {eos}", True, bos_token=bos, eos_token=eos, pad_token=eos,
                unk_token="<unk>", model_max_length=77)


def _save(path: str, seed: int, tokenizer, model_class, config, processor) -> str:
    """Random weights (seeded, initializer scaled up so vectors differ), tokenizer, processor."""
    torch.manual_seed(seed)
    config.initializer_factor = 5.0
    model_class(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def _siglip_text(tokenizer) -> dict:
    return dict(TEXT, vocab_size=len(tokenizer), max_position_embeddings=64,
                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)


def build_siglip(path: str, seed: int = 0) -> str:
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    tokenizer = siglip_tokenizer()
    config = SiglipConfig(text_config=_siglip_text(tokenizer), vision_config=dict(VISION, image_size=32, patch_size=8))
    return _save(path, seed, tokenizer, SiglipModel, config, SiglipImageProcessor(size={"height": 32, "width": 32}))


def build_siglip2(path: str, seed: int = 0) -> str:
    from transformers import Siglip2Config, Siglip2ImageProcessor, Siglip2Model

    tokenizer = siglip_tokenizer()
    config = Siglip2Config(text_config=_siglip_text(tokenizer), vision_config=dict(VISION, patch_size=8, num_patches=16))
    return _save(path, seed, tokenizer, Siglip2Model, config, Siglip2ImageProcessor(patch_size=8, max_num_patches=16))


def build_clip(path: str, seed: int = 0) -> str:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    tokenizer = clip_tokenizer()
    config = CLIPConfig(
        text_config=dict(TEXT, vocab_size=len(tokenizer), max_position_embeddings=77,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id),
        vision_config=dict(VISION, image_size=32, patch_size=8),
        projection_dim=16,
    )
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return _save(path, seed, tokenizer, CLIPModel, config, processor)
