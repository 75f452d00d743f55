"""The boot path, top to bottom: settings -> runtime (device, threads, CPU share, CPU kernels) ->
service state and app -> engines loaded -> ready.

Under Gunicorn, `boot` runs in each worker from `post_fork` (never in the master) and builds the
app; `load_engines` runs from `post_worker_init`, after the worker's setup and before its first
accept, so a worker takes connections only once it can serve them: while it loads, connections
wait in the listening socket's backlog or go to a worker that is ready, at start-up and after any
restart. Heartbeats during the load keep Gunicorn's worker timeout from killing a long load.
`serve_locally` is the same path in one process (development server, tests);
`load_in_background` loads while the app already answers (503 until READY).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable, Optional

from flask import Flask

from ..inference import compute
from ..config.cpu_share import CpuShare
from ..inference.registry import Registry
from ..inference.runtime import Runtime
from ..config.settings import Settings
from ..observability import tracing
from ..observability.logs import configure_logging
from ..operations.state import ServiceState, WorkerInfo

log = logging.getLogger("embedding_service.process.boot")

#: This process's state once booted (for SIGTERM and for the WSGI entry point).
_state: Optional[ServiceState] = None
_app: Optional[Flask] = None
#: What `load_engines` loads with: (settings, runtime), set by `boot`.
_pending: Optional[tuple[Settings, Runtime]] = None
#: Gunicorn's exit code for "worker failed to boot": the master stops instead of respawning.
WORKER_BOOT_ERROR = 3


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def boot(settings: Settings, slot: int, device: str, cpu_workers: int, cpu_share: Optional[CpuShare] = None) -> Flask:
    """Build worker `slot`'s runtime, state and app; `load_engines` loads the engines next.

    On CPU, `cpu_share` (made by the master) lets each forward pass use the cores no other
    worker's pass is using.
    """
    global _state, _app, _pending
    from ..http.app import create_app

    configure_logging(settings)
    configure_tracing()  # this worker's own provider and exporter, after the fork
    runtime = Runtime.for_worker(settings, slot, device, cpu_workers, cpu_share)
    compute.run(runtime.apply)  # torch's thread count and CUDA device are per thread
    _state = ServiceState.create(settings, WorkerInfo(device=device, slot=slot, cuda_available=_cuda_available()))
    _app = create_app(_state)
    _pending = (settings, runtime)
    start_malloc_trimmer()
    return _app


def load_engines(heartbeat: Callable[[], None]) -> None:
    """Load the booted worker's engines now (READY when done), calling `heartbeat` (Gunicorn's
    `worker.notify`) four times per TIMEOUT meanwhile, so a load of minutes does not trip the
    worker timeout. If loading fails the worker exits with Gunicorn's boot-error code, so a
    misconfigured service stops instead of respawning for ever."""
    if _state is None or _pending is None:
        raise RuntimeError("load_engines runs after boot")
    settings, runtime = _pending
    every = min(2.0, settings.timeout / 4)
    beating = threading.Event()

    def beat() -> None:
        while not beating.wait(every):
            heartbeat()

    threading.Thread(target=beat, name="load-heartbeat", daemon=True).start()
    try:
        _load_into(_state, settings, runtime, exit_on_failure=True)
    finally:
        beating.set()


def _load_into(state: ServiceState, settings: Settings, runtime: Runtime, exit_on_failure: bool) -> None:
    """Load the engines and hand them to `state` (READY); on failure mark it FAILED, log why and,
    with `exit_on_failure`, end the process with WORKER_BOOT_ERROR."""
    try:
        state.mark_ready(Registry.load(settings, runtime))
        log.info("worker %s ready", os.getpid())
    except BaseException:  # noqa: BLE001 - reported, then the caller's policy applies
        state.fail()
        log.exception("loading the models failed")
        if exit_on_failure:
            os._exit(WORKER_BOOT_ERROR)


def load_in_background(settings: Settings, runtime: Runtime, state: ServiceState, exit_on_failure: bool) -> threading.Thread:
    """Load the engines on a thread and hand them to `state` (READY); on failure mark it FAILED
    and, with `exit_on_failure`, end the process with WORKER_BOOT_ERROR."""
    thread = threading.Thread(
        target=_load_into, args=(state, settings, runtime, exit_on_failure), name="model-loader", daemon=True
    )
    thread.start()
    return thread


def serve_locally(settings: Settings, engines: Optional[Registry] = None, device: Optional[str] = None) -> ServiceState:
    """A single-process state, READY: serving `engines`, or the models of `settings` loaded now
    onto `device` (default: DEVICES' first, DEVICE, or cuda when torch sees one, else cpu).
    raises SettingsError when a model cannot be loaded."""
    runtime = Runtime.local(settings, device)
    state = ServiceState.create(settings, WorkerInfo(device=runtime.device, cuda_available=_cuda_available()))
    state.mark_ready(engines if engines is not None else Registry.load(settings, runtime))
    return state


def local_app(settings: Optional[Settings] = None, engines: Optional[Registry] = None) -> Flask:
    """A single-process app (development server, tests, scripts), READY: serving `engines`, or
    the models of `settings` (default: the environment and `.env`) loaded first
    (:func:`serve_locally`). raises SettingsError for bad configuration or a model that cannot
    load."""
    from ..http.app import create_app

    settings = settings or Settings.from_env()
    configure_logging(settings)
    configure_tracing()
    return create_app(serve_locally(settings, engines))


def configure_tracing() -> None:
    """OpenTelemetry traces for this process when the `OTEL_*` variables ask (observability/tracing.py), once."""
    if tracing.TRACER is None:
        from .. import __version__

        tracing.configure(__version__)


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
        _app = local_app()
    return _app
