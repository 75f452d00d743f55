"""Download models into the Hugging Face cache at image build time, for sites without internet:
`python -m embedding_service.bake MODEL [MODEL ...]` (the Dockerfiles' BAKE_MODELS build argument).
No model: nothing to do. Uses `huggingface_hub.snapshot_download`, so HF_HOME decides where."""

from __future__ import annotations

import sys
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    models = list(sys.argv[1:] if argv is None else argv)
    if not models:
        return 0
    from huggingface_hub import snapshot_download

    for model in models:
        print(f"baking {model} into the Hugging Face cache", flush=True)
        snapshot_download(model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
