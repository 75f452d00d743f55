"""Tiny random-weight retrieval models in their real repositories' layouts: a SPLADE masked LM
(sentence-transformers SparseEncoder files), BGE-M3 (an XLM-R body with `sparse_linear.pt` and
`colbert_linear.pt`, as BAAI/bge-m3 ships them) and a PyLate ColBERT model (a BERT body, a Dense
projection, query and document prefix tokens)."""

from __future__ import annotations

import json
import os
import string

import torch
from safetensors.torch import save_file
from tokenizers import processors
from transformers import PreTrainedTokenizerFast

from support.tiny_models import _write_json, wordpiece_tokenizer
from support.tiny_rerankers import _byte_bpe

ST_VERSION = {"sentence_transformers": "6.2.0", "transformers": "5.23.0", "pytorch": "2.13.0"}


def build_splade(
    path: str, seed: int = 0, vocab_size: int = 0, activation: str = "relu", pooling: str = "max", all_active: bool = False,
) -> str:
    """A BertForMaskedLM with SpladePooling, laid out as `SparseEncoder.save` does (ST 6).
    `vocab_size` larger than the tokenizer's pads the vocabulary (as real SPLADE's 30522 rows);
    `all_active`: every vocabulary entry of every input gets a weight (the worst case of the
    sparse budget), through a large output bias."""
    from transformers import BertConfig, BertForMaskedLM

    tokenizer = wordpiece_tokenizer(model_max_length=64)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=max(vocab_size, len(tokenizer)), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=128, initializer_range=0.2,
    )
    model = BertForMaskedLM(config)
    if all_active:
        with torch.no_grad():
            model.cls.predictions.bias.fill_(20.0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    _write_json(os.path.join(path, "modules.json"), [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.sparse_encoder.modules.mlm_transformer.MLMTransformer"},
        {"idx": 1, "name": "1", "path": "1_SpladePooling",
         "type": "sentence_transformers.sparse_encoder.modules.splade_pooling.SpladePooling"},
    ])
    _write_json(os.path.join(path, "1_SpladePooling", "config.json"),
                {"pooling_strategy": pooling, "activation_function": activation, "embedding_dimension": None})
    _write_json(os.path.join(path, "sentence_bert_config.json"), {"max_seq_length": 64, "do_lower_case": False})
    _write_json(os.path.join(path, "config_sentence_transformers.json"), {
        "__version__": ST_VERSION, "model_type": "SparseEncoder", "prompts": {"query": "query: ", "document": ""},
        "default_prompt_name": None, "similarity_fn_name": "dot",
    })
    return path


def build_inference_free_splade(path: str, seed: int = 5) -> str:
    """An inference-free SPLADE laid out as `SparseEncoder.save` writes a Router (ST 6): queries
    through a SparseStaticEmbedding (one static weight per vocabulary entry, about a third of them
    zero), documents through an MLMTransformer and SpladePooling in their own folders."""
    import shutil
    import tempfile

    mlm = build_splade(os.path.join(tempfile.mkdtemp(prefix="splade-mlm-"), "mlm"), seed=seed)
    document, query = os.path.join(path, "document_0_MLMTransformer"), os.path.join(path, "query_0_SparseStaticEmbedding")
    os.makedirs(path, exist_ok=True)
    shutil.copytree(mlm, document, ignore=shutil.ignore_patterns("modules.json", "1_SpladePooling", "config_sentence_transformers.json"))
    _write_json(os.path.join(path, "document_1_SpladePooling", "config.json"),
                {"pooling_strategy": "max", "activation_function": "relu", "embedding_dimension": None})
    os.makedirs(query)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(mlm, name), os.path.join(query, name))
    with open(os.path.join(mlm, "config.json"), encoding="utf-8") as handle:
        vocab = json.load(handle)["vocab_size"]
    torch.manual_seed(seed + 1)
    weight = torch.rand(vocab) * 3
    weight[torch.rand(vocab) < 0.3] = 0.0
    save_file({"weight": weight}, os.path.join(query, "model.safetensors"))
    _write_json(os.path.join(query, "config.json"), {"frozen": False})
    _write_json(os.path.join(path, "modules.json"),
                [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.base.modules.router.Router"}])
    _write_json(os.path.join(path, "router_config.json"), {
        "types": {
            "query_0_SparseStaticEmbedding": "sentence_transformers.sparse_encoder.modules.sparse_static_embedding.SparseStaticEmbedding",
            "document_0_MLMTransformer": "sentence_transformers.sparse_encoder.modules.mlm_transformer.MLMTransformer",
            "document_1_SpladePooling": "sentence_transformers.sparse_encoder.modules.splade_pooling.SpladePooling",
        },
        "structure": {"query": ["query_0_SparseStaticEmbedding"], "document": ["document_0_MLMTransformer", "document_1_SpladePooling"]},
        "parameters": {"default_route": "document", "allow_empty_key": True, "route_mappings": {}},
    })
    _write_json(os.path.join(path, "config_sentence_transformers.json"), {
        "__version__": ST_VERSION, "model_type": "SparseEncoder", "prompts": {"query": "", "document": ""},
        "default_prompt_name": None, "similarity_fn_name": "dot",
    })
    return path


def xlmr_tokenizer(model_max_length: int = 64) -> PreTrainedTokenizerFast:
    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = _byte_bpe(special)
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>", pad_token="<pad>",
        unk_token="<unk>", mask_token="<mask>", model_max_length=model_max_length,
    )


def build_bge_m3(path: str, seed: int = 0, colbert_dim: int = 0) -> str:
    """An XLMRobertaModel laid out as BAAI/bge-m3: CLS pooling and Normalize modules, and the
    sparse (hidden -> 1) and ColBERT (hidden -> hidden, or `colbert_dim`) heads as state dicts."""
    from transformers import XLMRobertaConfig, XLMRobertaModel

    tokenizer = xlmr_tokenizer()
    torch.manual_seed(seed)
    hidden = 32
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=66, type_vocab_size=1, pad_token_id=tokenizer.pad_token_id, initializer_range=0.3,
    )
    XLMRobertaModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    _write_json(os.path.join(path, "modules.json"), [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    _write_json(os.path.join(path, "1_Pooling", "config.json"), {"word_embedding_dimension": hidden, "pooling_mode_cls_token": True})
    _write_json(os.path.join(path, "sentence_bert_config.json"), {"max_seq_length": 64, "do_lower_case": False})
    torch.manual_seed(seed + 1)
    sparse = torch.nn.Linear(hidden, 1)
    colbert = torch.nn.Linear(hidden, colbert_dim or hidden)
    torch.nn.init.normal_(sparse.weight, std=0.5)
    torch.nn.init.constant_(sparse.bias, 1.0)  # most tokens get a weight, as BGE-M3's do
    torch.save(sparse.state_dict(), os.path.join(path, "sparse_linear.pt"))
    torch.save(colbert.state_dict(), os.path.join(path, "colbert_linear.pt"))
    return path


def build_pylate_colbert(path: str, seed: int = 0, out_features: int = 16, attend_to_expansion: bool = False) -> str:
    """A BertModel with PyLate's Dense projection (no bias, Identity), the `[Q] ` and `[D] `
    prefix tokens in its tokenizer, query length 16 and document length 32."""
    from transformers import BertConfig, BertModel

    tokenizer = wordpiece_tokenizer(model_max_length=512)
    tokenizer.add_tokens(["[Q] ", "[D] "])
    torch.manual_seed(seed)
    hidden = 32
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=128, initializer_range=0.2,
    )
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    _write_json(os.path.join(path, "modules.json"), [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
    ])
    _write_json(os.path.join(path, "1_Dense", "config.json"), {
        "in_features": hidden, "out_features": out_features, "bias": False,
        "activation_function": "torch.nn.modules.linear.Identity",
    })
    torch.manual_seed(seed + 1)
    save_file({"linear.weight": torch.randn(out_features, hidden) * 0.3}, os.path.join(path, "1_Dense", "model.safetensors"))
    _write_json(os.path.join(path, "sentence_bert_config.json"), {"max_seq_length": 31, "do_lower_case": False})
    with open(os.path.join(path, "config_sentence_transformers.json"), "w", encoding="utf-8") as handle:
        json.dump({
            "__version__": {**ST_VERSION, "pylate": "1.2.0"}, "prompts": {}, "default_prompt_name": None,
            "similarity_fn_name": "MaxSim", "query_prefix": "[Q] ", "document_prefix": "[D] ", "query_length": 16,
            "document_length": 32, "attend_to_expansion_tokens": attend_to_expansion,
            "skiplist_words": list(string.punctuation),
        }, handle, indent=2)
    return path


_BUILT: dict[str, str] = {}


def shared_bge_m3() -> str:
    """One tiny BGE-M3 per test process, in a temporary folder (for apps built at collection)."""
    if "m3" not in _BUILT:
        import tempfile

        _BUILT["m3"] = build_bge_m3(os.path.join(tempfile.mkdtemp(prefix="tiny-bge-m3-"), "bge-m3"))
    return _BUILT["m3"]
