"""Gunicorn configuration (SPEC §5): gthread workers, one device slot per worker, no preload.

The master imports only torch-free modules (settings, devices); each worker loads its models in
`post_fork` onto the slot the master gave it in `pre_fork`, and `child_exit` returns the slot so a
restarted worker reuses it. Run: `gunicorn -c gunicorn.conf.py embedding_service.wsgi:app`.
"""

import sys

from embedding_service.cpu_share import CpuShare
from embedding_service.devices import SlotPool, cpu_cores, device_list, worker_count
from embedding_service.settings import Settings, SettingsError

try:
    _settings = Settings.from_env()
    _devices = device_list(_settings)
except SettingsError as _exc:
    sys.stderr.write(f"embedding_service: configuration error: {_exc}\n")
    sys.exit(2)

bind = f"{_settings.host}:{_settings.port}"
workers = worker_count(_settings, _devices)
worker_class = "gthread"
threads = _settings.threads
timeout = _settings.timeout
graceful_timeout = _settings.graceful_timeout
preload_app = False
loglevel = _settings.log_level.lower()
accesslog = "-"
errorlog = "-"
# Headers: Gunicorn's own limits apply (limit_request_line 4094, fields 100, field size 8190).

_pool = SlotPool(_devices, workers)
# Shared-memory busy flags, one per slot: CPU workers size torch's threads per forward pass.
_cpu_share = CpuShare(workers, cpu_cores())


def pre_fork(server, worker):
    """Master: give the new worker the lowest free device slot."""
    worker.slot = _pool.acquire()
    worker.device = _pool.device(worker.slot)


def post_fork(server, worker):
    """Worker: load models onto the slot's device and build the app."""
    from embedding_service.worker import boot

    server.log.info("worker %s: slot %s on %s", worker.pid, worker.slot, worker.device)
    boot(_settings, worker.slot, worker.device, _pool.cpu_workers, notify=worker.notify, cpu_share=_cpu_share)


def child_exit(server, worker):
    """Master: a worker exited; free its slot for the replacement."""
    _pool.release(getattr(worker, "slot", None))
