"""Memory of one Gunicorn worker serving the images' three default models, measured without
downloading them: random-weight checkpoints with the real architectures (the published config.json
hyperparameters below; vocabularies at full size, tokenizers trained on the spot), saved in the
real checkpoints' dtypes, then served by `gunicorn.conf.py` with WORKERS=1 on the CPU.

    .venv/bin/python scripts/default_models_memory.py [--dir DIR] [--dtype auto|bfloat16|...]

Prints each model's parameter count and weight bytes, the worker's resident memory once ready,
and its peak (VmHWM) after a text batch per model at MAX_BATCH_SIZE, a rerank and an image batch.
Needs about 13 GB of free memory and 10 GB of disk in DIR (default: a temporary directory,
removed afterwards). The figures size the compose files' memory limits and WORKERS.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from test_gunicorn import wait_healthy  # noqa: E402  (the tests' readiness wait)

#: Published architecture hyperparameters (config.json) of the three default models.
SIGLIP2_SO400M = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16)
SIGLIP2_TEXT = dict(SIGLIP2_SO400M, vocab_size=256000, max_position_embeddings=64, projection_size=1152)
SIGLIP2_VISION = dict(SIGLIP2_SO400M, patch_size=16, num_patches=256, num_channels=3)
QWEN3_0_6B = dict(vocab_size=151669, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                  num_attention_heads=16, num_key_value_heads=8, head_dim=128, max_position_embeddings=32768,
                  tie_word_embeddings=True)


def full_size(path: str, update, model_class, dtype) -> int:
    """Rewrite the tiny checkpoint at `path` at full size with random weights; its parameter count."""
    import torch

    config = update(model_class.config_class.from_pretrained(path))
    with torch.device("meta"):
        model = model_class(config)
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.02)
    model.tie_weights()
    count = sum(p.numel() for p in model.parameters())
    for name in os.listdir(path):
        if name.endswith(".safetensors"):
            os.remove(os.path.join(path, name))
    model.to(dtype).save_pretrained(path)
    del model
    return count


#: Written in each folder once it holds the full-size checkpoint (`--dir` reuses it).
DONE = ".full-size"
#: Folder names: the served names (a reranker's name must say so, as the real one's does).
NAMES = {"siglip2": "siglip2-so400m-patch16-naflex", "embedding": "qwen3-embedding-0.6b",
         "reranker": "qwen3-reranker-0.6b"}


def build(paths: dict) -> None:
    """The three checkpoints at `paths` (keys of NAMES): tiny ones from the tests' builders, then
    rewritten at full size."""
    import torch
    from transformers import Qwen3ForCausalLM, Qwen3Model, Siglip2ImageProcessor, Siglip2Model

    import tiny_models
    import tiny_multimodal
    import tiny_rerankers

    tiny_multimodal.build_siglip2(paths["siglip2"])
    tiny_models.build_qwen3_embedding(paths["embedding"])
    tiny_rerankers.build_qwen3_reranker(paths["reranker"])

    def siglip2(config):
        for key, value in SIGLIP2_TEXT.items():
            setattr(config.text_config, key, value)
        for key, value in SIGLIP2_VISION.items():
            setattr(config.vision_config, key, value)
        return config

    def qwen3(config):  # rebuilt: layer_types follows num_hidden_layers
        values = {key: value for key, value in config.to_dict().items() if key != "layer_types"}
        return type(config)(**{**values, **QWEN3_0_6B})

    counts = {  # SigLIP 2's checkpoint is float32, the Qwen3 ones bfloat16
        "siglip2": full_size(paths["siglip2"], siglip2, Siglip2Model, torch.float32),
        "embedding": full_size(paths["embedding"], qwen3, Qwen3Model, torch.bfloat16),
        "reranker": full_size(paths["reranker"], qwen3, Qwen3ForCausalLM, torch.bfloat16),
    }
    Siglip2ImageProcessor(patch_size=16, max_num_patches=256).save_pretrained(paths["siglip2"])
    for key, count in counts.items():
        print(f"{key}: {count / 1e6:.1f}M parameters, {4 * count / 2**30:.2f} GiB in float32, "
              f"{2 * count / 2**30:.2f} GiB in float16", flush=True)
        open(os.path.join(paths[key], DONE), "w").close()


def status_mib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024
    raise KeyError(field)


def worker_pid(master: int) -> int:
    with open(f"/proc/{master}/task/{master}/children") as handle:
        return int(handle.read().split()[0])


def png(width: int, height: int) -> str:
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def serve_and_measure(paths: dict, dtype: str) -> None:
    import requests

    from conftest import free_port

    port = free_port()
    env = dict(os.environ, WORKERS="1", PORT=str(port), HOST="127.0.0.1", DEVICE="cpu", DTYPE=dtype,
               LOG_LEVEL="WARNING", HF_HUB_OFFLINE="1", MODEL_NAME=paths["siglip2"],
               EMBEDDING_MODEL=paths["embedding"], RERANK_MODEL=paths["reranker"], MODELS="")
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    began = time.monotonic()
    proc = subprocess.Popen([gunicorn, "-c", "gunicorn.conf.py", "embedding_service.wsgi:app"], cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, seconds=3600)  # models of this size load for minutes on a small CPU
        worker = worker_pid(proc.pid)
        print(f"ready after {time.monotonic() - began:.0f}s: worker VmRSS {status_mib(worker, 'VmRSS')} MiB, "
              f"VmHWM {status_mib(worker, 'VmHWM')} MiB (loading included), DTYPE={dtype}", flush=True)
        models = {m["id"]: m for m in requests.get(f"{url}/v1/models", timeout=10).json()["data"]}
        text = "a fairly long sentence about cats, dogs and the weather in spring " * 6
        for name in (os.path.basename(paths["embedding"]), os.path.basename(paths["siglip2"])):
            resp = requests.post(f"{url}/v1/embeddings", json={"model": name, "input": [text] * 32}, timeout=600)
            assert resp.status_code == 200, resp.text
        resp = requests.post(f"{url}/rerank", json={"model": os.path.basename(paths["reranker"]), "query": text,
                                                     "documents": [text * 4] * 32}, timeout=600)
        assert resp.status_code == 200, resp.text
        resp = requests.post(f"{url}/embed", json={"images": [png(1024, 768)] * 8}, timeout=600)
        assert resp.status_code == 200, resp.text
        print(f"after a text batch of 32 per text model, a rerank of 32 documents and 8 images: worker VmRSS "
              f"{status_mib(worker, 'VmRSS')} MiB, VmHWM {status_mib(worker, 'VmHWM')} MiB "
              f"(served: {', '.join(sorted(models))})", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", help="where to write the checkpoints (kept); default: a temporary directory")
    parser.add_argument("--dtype", default="auto", help="DTYPE for the server (default auto: float32 on CPU)")
    args = parser.parse_args()
    root = args.dir or tempfile.mkdtemp(prefix="default-models-")
    try:
        paths = {key: os.path.join(root, name) for key, name in NAMES.items()}
        if not all(os.path.isfile(os.path.join(path, DONE)) for path in paths.values()):
            build(paths)
        serve_and_measure(paths, args.dtype)
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
