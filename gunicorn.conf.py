"""Gunicorn configuration: gthread workers, one device slot per worker, no preload.

The master imports only torch-free modules (settings, devices); each worker builds its app in
`post_fork` for the slot the master gave it in `pre_fork` and loads its models in
`post_worker_init`, before it accepts a connection; `child_exit` returns the slot so a restarted
worker reuses it. Run: `gunicorn -c gunicorn.conf.py embedding_service.wsgi:app`.
"""

import logging
import os
import re
import shutil
import sys
import tempfile

from gunicorn import glogging

from embedding_service.config.cpu_share import CpuShare
from embedding_service.config.devices import SlotPool, cpu_cores, device_list, worker_count
from embedding_service.observability.logs import gunicorn_logconfig
from embedding_service.config.model_specs import model_specs
from embedding_service.config.settings import Settings, SettingsError

try:
    _settings = Settings.from_env()
    _devices = device_list(_settings)
    model_specs(_settings)  # the MODELS grammar fails here, in the master, before any fork
except SettingsError as _exc:
    sys.stderr.write(f"embedding_service: configuration error: {_exc}\n")
    sys.exit(2)

# Prometheus multiprocess mode: every worker writes its values here; /metrics sums them.
# Set before any worker imports prometheus_client; wiped in on_starting.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), f"embedding-metrics-{_settings.port}"))

bind = f"{_settings.host}:{_settings.port}"
# Gunicorn's control socket (for `gunicornc`), one per instance: its default path is one per user,
# shared by every Gunicorn on the host. Derived from the bind address, which no two servers share.
control_socket = os.path.join(
    tempfile.gettempdir(), "embedding-service-{}-{}.ctl".format(re.sub(r"[^A-Za-z0-9.]", "_", _settings.host), _settings.port)
)
workers = worker_count(_settings, _devices)
worker_class = "gthread"
threads = _settings.threads
timeout = _settings.timeout
graceful_timeout = _settings.graceful_timeout
preload_app = False
loglevel = _settings.log_level.lower()
accesslog = None  # the app logs one access line per request, with its request id (logs.py)
errorlog = "-"
logconfig_dict = gunicorn_logconfig(_settings)


class _Logger(glogging.Logger):
    """Gunicorn's logger, except that the access line is built only when `gunicorn.access` would
    print it. With a log configuration Gunicorn builds every request's access-log fields (headers,
    times, environ) before its logger, kept at WARNING by `logconfig_dict`, drops the line: about a
    tenth of a request thread's Gunicorn-side work, for nothing."""

    def access(self, resp, req, environ, request_time):
        if self.access_log.isEnabledFor(logging.INFO):
            super().access(resp, req, environ, request_time)


logger_class = _Logger
# Gunicorn's own trust of X-Forwarded-Proto and the like follows FORWARDED_ALLOW_IPS exactly: unset
# trusts no one (Gunicorn alone would trust 127.0.0.1 and ::1).
forwarded_allow_ips = ",".join(_settings.forwarded_allow_ips)
# Headers: Gunicorn's own limits apply (limit_request_line 4094, fields 100, field size 8190).

_pool = SlotPool(_devices, workers)
# Shared-memory busy flags, one per slot: CPU workers size torch's threads per forward pass.
_cpu_share = CpuShare(workers, cpu_cores())


def when_ready(server):
    """Master, once the listening sockets exist: TCP_NODELAY on each, which every accepted
    connection inherits (Linux). Gunicorn writes a response's headers and body in two sends; with
    Nagle's algorithm the body then waits for the client's delayed ACK (40 ms) whenever the
    connection was idle, which a client pausing between requests sees on most of them."""
    import socket

    for listener in server.LISTENERS:
        try:
            listener.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):  # a Unix socket: no Nagle
            pass


def on_starting(server):
    """Master, once: start metrics from zero."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)


def nworkers_changed(server, new_value, old_value):
    """Master: TTIN, TTOU and the control socket's `worker add`/`remove` change the worker count.
    More workers than device slots (WORKERS; one per GPU by default) is refused with a log line,
    and the count stays: a slot is a GPU, or a CPU worker's share of the cores."""
    if new_value is not None and new_value > _pool.slots:
        kept = old_value if old_value is not None and old_value <= _pool.slots else _pool.slots
        server.log.error(
            "refusing %d workers: there are %d device slots (WORKERS=%d); keeping %d. Set WORKERS and restart "
            "to run more", new_value, _pool.slots, _pool.slots, kept,
        )
        server.num_workers = kept  # calls this hook again, with a count that fits


def pre_fork(server, worker):
    """Master: give the new worker the lowest device slot no live worker holds (SlotPool.acquire),
    read from Gunicorn's own list of workers, so slots stay consistent across a reload."""
    holders = [(w.age, w.slot) for w in server.WORKERS.values() if getattr(w, "slot", None) is not None]
    worker.slot = _pool.acquire(holders)
    worker.device = _pool.device(worker.slot)


def post_fork(server, worker):
    """Worker: build the runtime, state and app for the slot's device; SIGTERM turns /ready to 503."""
    from embedding_service.process import gunicorn_errors
    from embedding_service.process.boot import boot, mark_draining

    gunicorn_errors.install()  # Gunicorn's own 400/414/431 answered as JSON, not HTML
    server.log.info("worker %s: slot %s on %s", worker.pid, worker.slot, worker.device)
    boot(_settings, worker.slot, worker.device, _pool.cpu_workers, cpu_share=_cpu_share)
    graceful_exit = worker.handle_exit  # installed by the worker after post_fork (init_signals)

    def handle_exit(sig, frame):
        mark_draining()
        graceful_exit(sig, frame)

    worker.handle_exit = handle_exit


def post_worker_init(worker):
    """Worker, after its setup and before its first accept: load the models onto the slot's
    device, so the worker takes connections only once it can serve them (meanwhile they wait in
    the listen backlog or go to a ready worker); heartbeats keep the worker timeout away."""
    from embedding_service.process.boot import load_engines

    load_engines(worker.notify)


def child_exit(server, worker):
    """Master: a worker exited; free its slot for the replacement and retire its live gauges."""
    _pool.release(getattr(worker, "slot", None))
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
