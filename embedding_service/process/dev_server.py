"""Development server: `python -m embedding_service` runs the same app on Flask's threaded server
(Werkzeug's).

SIGTERM stops it cleanly, as it stops a Gunicorn worker: `/ready` turns 503, the listening socket
closes, requests in flight get up to GRACEFUL_TIMEOUT seconds to finish, and the process exits
with status 0 (Ctrl-C, SIGINT, takes the same path). The handler is installed explicitly because
in a container this process is PID 1, and the kernel delivers no signal to PID 1 whose
disposition is the default: without a handler of its own, `docker stop` would wait out its
timeout and then kill. A SIGTERM while the models are still loading exits at once, status 0.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

from flask import Flask

from ..config.settings import Settings, SettingsError

#: The exit status after SIGTERM: the server stopped as asked.
STOPPED = 0


class InFlight:
    """WSGI middleware counting the requests of `app` until their response is fully written (the
    server closes the response iterable after sending its last byte), so shutdown can wait for
    them: Flask's teardown signals fire before a large body is sent."""

    def __init__(self, app: Any):
        self.app = app
        self.count = 0
        self.idle = threading.Condition()

    def __call__(self, environ: dict, start_response: Any) -> Any:
        from werkzeug.wsgi import ClosingIterator

        with self.idle:
            self.count += 1
        try:
            return ClosingIterator(self.app(environ, start_response), [self._finished])
        except BaseException:
            self._finished()
            raise

    def _finished(self) -> None:
        with self.idle:
            self.count -= 1
            self.idle.notify_all()

    def wait(self, seconds: float) -> bool:
        """True when no request is in flight within `seconds`."""
        with self.idle:
            return self.idle.wait_for(lambda: self.count <= 0, timeout=seconds)


def _exit_while_loading(signum: int, frame: Any) -> None:
    raise SystemExit(STOPPED)


def run(app: Flask, settings: Settings) -> int:
    """Serve `app` on HOST:PORT until SIGTERM or Ctrl-C, then drain (see the module doc); returns
    STOPPED."""
    from werkzeug.serving import make_server

    from ..http.json_io import STATE_KEY

    state = app.extensions[STATE_KEY]
    in_flight = InFlight(app)
    server = make_server(settings.host, settings.port, in_flight, threaded=True)
    stopping = threading.Event()

    def shut_down() -> None:
        state.drain()
        server.shutdown()  # waits for the serving loop to stop: never from the loop's own thread

    def stop(signum: int, frame: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=shut_down, name="shutdown", daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    server.log_startup()
    server.serve_forever()  # returns after `shutdown`, and on Ctrl-C (Werkzeug catches it); socket closed
    state.drain()
    if not in_flight.wait(settings.graceful_timeout):
        print(f"embedding_service: requests still in flight after GRACEFUL_TIMEOUT={settings.graceful_timeout}s; "
              "exiting", file=sys.stderr)
    return STOPPED


def main() -> int:
    previous = signal.signal(signal.SIGTERM, _exit_while_loading)
    try:
        settings = Settings.from_env()
        from .boot import local_app

        app = local_app(settings)
    except SettingsError as exc:
        print(f"embedding_service: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        return run(app, settings)
    finally:
        signal.signal(signal.SIGTERM, previous)
