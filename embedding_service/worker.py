"""Gunicorn worker start-up: called from `post_fork` in each worker process (never the master).

Loads the models onto the worker's slot device, sizes torch's CPU threads, and builds the app
that `embedding_service.wsgi:app` hands to Gunicorn.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional

from flask import Flask

from .cpu_share import CpuShare, SlotShare
from .devices import cpu_threads
from .settings import Settings

_app: Optional[Flask] = None


def boot(
    settings: Settings,
    slot: int,
    device: str,
    cpu_workers: int,
    notify: Optional[Callable[[], None]] = None,
    cpu_share: Optional[CpuShare] = None,
) -> Flask:
    """Load models on `device` for worker `slot` and build its app.

    `notify` (Gunicorn's worker heartbeat) is called every second while models load, so a slow
    load is not mistaken for a hung worker. On CPU, `cpu_share` (made by the master) lets each
    forward pass use the cores that no other worker's pass is using.
    """
    global _app
    import torch

    if device == "cpu":
        torch.set_num_threads(cpu_threads(cpu_workers))
    elif device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    done = threading.Event()
    if notify is not None:
        def beat() -> None:
            while not done.wait(1.0):
                notify()

        threading.Thread(target=beat, name="load-heartbeat", daemon=True).start()
    try:
        from .app import configure_logging, create_app
        from .registry import Registry

        configure_logging(settings)
        registry = Registry.load(settings, device)
        if device == "cpu" and cpu_share is not None and settings.cpu_share:
            for batcher in registry.batchers.values():
                batcher.cpu_share = SlotShare(cpu_share, slot)
        _app = create_app(settings, registry=registry, worker={"slot": slot})
    finally:
        done.set()
    start_malloc_trimmer()
    return _app


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
