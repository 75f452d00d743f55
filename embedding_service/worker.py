"""Gunicorn worker start-up: called from `post_fork` in each worker process (never the master).

Sizes torch's CPU threads, builds the app that `embedding_service.wsgi:app` hands to Gunicorn,
and loads the models onto the worker's slot device while the worker already answers probes.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Optional

from flask import Flask

from .cpu_share import CpuShare, SlotShare
from .devices import cpu_threads
from .settings import Settings

_app: Optional[Flask] = None
#: Gunicorn's exit code for "worker failed to boot": the master stops instead of respawning.
WORKER_BOOT_ERROR = 3


def boot(
    settings: Settings,
    slot: int,
    device: str,
    cpu_workers: int,
    cpu_share: Optional[CpuShare] = None,
) -> Flask:
    """Build worker `slot`'s app and start loading its models onto `device` in the background.

    The worker answers at once: `/health` 200, `/ready` and inference routes 503 until the models
    are loaded and warmed. If loading fails the worker exits with Gunicorn's boot-error code, so a
    misconfigured service stops instead of respawning forever. On CPU, `cpu_share` (made by the
    master) lets each forward pass use the cores no other worker's pass is using.
    """
    global _app
    import torch

    if device == "cpu":
        torch.set_num_threads(cpu_threads(cpu_workers))
    elif device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    from .app import create_app

    def loaded(registry) -> None:
        if device == "cpu" and cpu_share is not None and settings.cpu_share:
            for batcher in registry.batchers.values():
                batcher.cpu_share = SlotShare(cpu_share, slot)
            # Registry.load built oneDNN's kernels for the current thread count; the share picks others too.
            others = [t for t in cpu_share.thread_counts() if t != torch.get_num_threads()]
            if settings.onednn_linear and others:
                from .models.onednn import warm_kernels

                for model in registry.models:
                    warm_kernels(model.model, others)

    def failed(_exc: BaseException) -> None:
        os._exit(WORKER_BOOT_ERROR)

    _app = create_app(
        settings, worker={"slot": slot}, load_async=True, device=device, on_loaded=loaded, on_load_error=failed
    )
    start_malloc_trimmer()
    return _app


def mark_draining() -> None:
    """SIGTERM reached this worker: `/ready` answers 503 while in-flight requests finish."""
    if _app is not None:
        _app.extensions["embedding_service"].phase = "draining"


def start_malloc_trimmer(every: float = 5.0) -> None:
    """Return freed heap pages to the OS every `every` seconds (glibc `malloc_trim`).

    Dozens of request threads allocate from several malloc arenas; without trimming, a worker's
    resident memory creeps up over a long run although nothing leaks (measured in
    CONCURRENCY_ANALYSIS.md). Not glibc: nothing to do.
    """
    try:
        import ctypes

        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return

    def loop() -> None:
        while True:
            time.sleep(every)
            trim(0)

    threading.Thread(target=loop, name="malloc-trim", daemon=True).start()


def current_app() -> Flask:
    """The booted app, or (when Gunicorn runs without gunicorn.conf.py) one built from the env."""
    global _app
    if _app is None:
        from .app import create_app

        _app = create_app()
    return _app
