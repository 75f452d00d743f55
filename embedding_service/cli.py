"""The `embedding-service` command (installed by `pip install -e .`).

    embedding-service                  # Gunicorn with the repository's gunicorn.conf.py (as `make run`)
    embedding-service --config PATH    # Gunicorn with another config file
    embedding-service --dev            # Flask's development server (as `make dev`)
    embedding-service run-batch -i requests.jsonl -o results.jsonl   # a bulk job, offline

Settings come from the environment and `.env`, as for every other way of starting the service.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

APP = "embedding_service.wsgi:app"
#: The repository's Gunicorn config, beside the package in a checkout or an editable install.
REPOSITORY_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gunicorn.conf.py")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Start the service; returns the exit status (2 for a missing config file or a bad setting).

    Under Gunicorn this only returns when the master exits (Gunicorn ends the process itself).
    `run-batch` runs a batch file offline (process/run_batch.py).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run-batch"]:
        from .process.run_batch import main as run_batch

        return run_batch(argv[1:])
    parser = argparse.ArgumentParser(prog="embedding-service", description="Serve embeddings and reranking over HTTP.")
    parser.add_argument("--dev", action="store_true", help="run Flask's development server instead of Gunicorn")
    parser.add_argument(
        "--config", metavar="PATH", help=f"Gunicorn config file (default: the repository's, {REPOSITORY_CONFIG})"
    )
    args = parser.parse_args(argv)
    if args.dev:
        if args.config:
            parser.error("--config applies to Gunicorn, not to --dev")
        from .process.dev_server import main as dev_server

        return dev_server()
    config = args.config or REPOSITORY_CONFIG
    if not os.path.isfile(config):
        print(f"embedding-service: no Gunicorn config at {config}; pass --config PATH or use --dev", file=sys.stderr)
        return 2
    from gunicorn.app.wsgiapp import run

    sys.argv = ["embedding-service", "-c", config, APP]  # Gunicorn reads its command line from sys.argv
    run(prog="embedding-service")
    return 0


if __name__ == "__main__":
    sys.exit(main())
