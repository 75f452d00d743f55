"""Bake models into an image at build time, for sites without internet:
`python -m embedding_service.bake MODEL [MODEL ...]` (the Dockerfiles' BAKE_MODELS build argument).

Each hub id `org/name` is downloaded with `huggingface_hub.snapshot_download(repo_id,
local_dir=MODEL_DIR/org/name)`: plain files in a folder of their own, outside the Hugging Face
cache, so a volume mounted on the cache (`HF_HOME`) cannot hide them. At run time a model
configured by that hub id loads from the folder when it exists (`models/spec.py`), under its hub id
as its name. `--model-dir DIR` overrides the `MODEL_DIR` environment variable.

No model: nothing to do, exit 0. No MODEL_DIR, or a model that is not a hub id: a message and
exit 2. Standard library only until a download starts: the images run this before copying the
rest of the package, and Gunicorn's master imports `baked_path`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Optional, Sequence

#: A hub id: `name` or `org/name`, each part starting with a letter or digit (so never `.` or
#: `..`), then letters, digits, `.`, `_`, `-` (the hub's own repository name rule).
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)?")


def baked_path(model_dir: str, reference: str) -> Optional[str]:
    """The folder hub id `reference` is baked in under `model_dir` (`model_dir/org/name`), or None
    when `model_dir` is empty or `reference` is not a hub id (a local path, say)."""
    if not model_dir or not HUB_ID.fullmatch(reference):
        return None
    return os.path.join(model_dir, *reference.split("/"))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m embedding_service.bake", description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", metavar="MODEL", help="hub ids, e.g. Qwen/Qwen3-Embedding-0.6B")
    parser.add_argument("--model-dir", default=os.environ.get("MODEL_DIR", ""), help="where to bake (default: MODEL_DIR)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not args.models:
        return 0
    if not args.model_dir:
        print("embedding_service.bake: set MODEL_DIR (or --model-dir) to the folder to bake models into", file=sys.stderr)
        return 2
    targets = [(model, baked_path(args.model_dir, model)) for model in args.models]
    for model, target in targets:
        if target is None:
            print(f"embedding_service.bake: {model!r} is not a hub id (org/name)", file=sys.stderr)
            return 2
    from huggingface_hub import snapshot_download

    for model, target in targets:
        print(f"baking {model} into {target}", flush=True)
        snapshot_download(model, local_dir=target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
