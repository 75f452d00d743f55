"""Gunicorn exactly as `make run` configures it (the repository's gunicorn.conf.py), except that
each worker's model forward passes are replaced, once loaded, by a stub returning zeros: every CPU
second a worker then spends is the request path outside the forward pass (HTTP, Flask, validation,
tokenising, batching, metrics, the access log, serialisation). For measurements only:

    .venv/bin/python scripts/request_cost.py --gunicorn      # starts it, loads it, reads its workers' CPU
"""

import json
import os

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(_ROOT, "gunicorn.conf.py"), encoding="utf-8") as _handle:
    exec(compile(_handle.read(), os.path.join(_ROOT, "gunicorn.conf.py"), "exec"))

_load_models = post_worker_init  # noqa: F821 - defined by gunicorn.conf.py above


def post_worker_init(worker):
    """Load the models as usual, then stub every engine's forward pass."""
    import numpy as np

    from embedding_service.process.boot import current_app

    _load_models(worker)
    for engine in current_app().extensions["embedding_service"].require_engines().engines:
        dimension = engine.model.dimension
        engine.model.forward = lambda items, dimension=dimension: np.zeros((len(items), dimension), dtype=np.float32)
    from embedding_service.inference import compute

    compute.run(lambda: None)  # started now, so its thread id is known
    # Which OS thread runs the batchers' turns (the compute thread), for scripts/request_cost.py's per-thread breakdown.
    with open(os.path.join(tempfile.gettempdir(), f"request-cost-{os.getpid()}.json"), "w") as handle:  # noqa: F821
        json.dump({"compute": [compute.compute.native_id]}, handle)
