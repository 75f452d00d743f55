"""The boot path, top to bottom: settings -> runtime (device, threads, CPU share, CPU kernels) ->
service state and app -> engines loaded -> ready.

`boot` runs in each Gunicorn worker (from `post_fork`, never in the master): the worker answers
probes at once and loads its engines on a background thread. `serve_locally` is the same path in
one process, loading before it returns (development server, tests).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Optional

from flask import Flask

from .cpu_share import CpuShare
from .registry import Registry
from .runtime import Runtime
from .settings import Settings
from .state import ServiceState, WorkerInfo

log = logging.getLogger("embedding_service.worker")

#: This process's state once booted (for SIGTERM and for the WSGI entry point).
_state: Optional[ServiceState] = None
_app: Optional[Flask] = None
#: Gunicorn's exit code for "worker failed to boot": the master stops instead of respawning.
WORKER_BOOT_ERROR = 3


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def boot(settings: Settings, slot: int, device: str, cpu_workers: int, cpu_share: Optional[CpuShare] = None) -> Flask:
    """Build worker `slot`'s app and start loading its engines onto `device` in the background.

    The worker answers at once: `/health` 200, `/ready` and inference routes 503 until the
    engines are loaded and warmed. If loading fails the worker exits with Gunicorn's boot-error
    code, so a misconfigured service stops instead of respawning forever. On CPU, `cpu_share`
    (made by the master) lets each forward pass use the cores no other worker's pass is using.
    """
    global _state, _app
    from .app import create_app

    runtime = Runtime.for_worker(settings, slot, device, cpu_workers, cpu_share)
    runtime.apply()
    _state = ServiceState.create(settings, WorkerInfo(device=device, slot=slot, cuda_available=_cuda_available()))
    _app = create_app(settings, state=_state)
    load_in_background(settings, runtime, _state, exit_on_failure=True)
    start_malloc_trimmer()
    return _app


def load_in_background(settings: Settings, runtime: Runtime, state: ServiceState, exit_on_failure: bool) -> threading.Thread:
    """Load the engines on a thread and hand them to `state` (READY); on failure mark it FAILED
    and, with `exit_on_failure`, end the process with WORKER_BOOT_ERROR."""

    def load() -> None:
        try:
            state.serve(Registry.load(settings, runtime))
            log.info("worker %s ready", os.getpid())
        except BaseException:  # noqa: BLE001 - reported, then the worker stops
            state.fail()
            log.exception("loading the models failed")
            if exit_on_failure:
                os._exit(WORKER_BOOT_ERROR)

    thread = threading.Thread(target=load, name="model-loader", daemon=True)
    thread.start()
    return thread


def serve_locally(settings: Settings, engines: Optional[Registry] = None, device: Optional[str] = None) -> ServiceState:
    """A single-process state, READY: serving `engines`, or the models of `settings` loaded now
    onto `device` (default: DEVICES' first, DEVICE, or cuda when torch sees one, else cpu).
    raises SettingsError when a model cannot be loaded."""
    runtime = Runtime.local(settings, device)
    state = ServiceState.create(settings, WorkerInfo(device=runtime.device, cuda_available=_cuda_available()))
    state.serve(engines if engines is not None else Registry.load(settings, runtime))
    return state


def mark_draining() -> None:
    """SIGTERM reached this worker: `/ready` answers 503 while in-flight requests finish."""
    if _state is not None:
        _state.drain()


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
