"""gunicorn.conf.py as Gunicorn reads it: its own trust of `X-Forwarded-*` headers follows
FORWARDED_ALLOW_IPS (unset trusts no one, where Gunicorn alone trusts 127.0.0.1 and ::1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from support.paths import ROOT

READ = """
import json, runpy
from gunicorn.config import Config
namespace = runpy.run_path("gunicorn.conf.py")
cfg = Config()
for key, value in namespace.items():
    if key in cfg.settings:
        cfg.set(key, value)
print(json.dumps(cfg.forwarded_allow_ips))
"""


@pytest.mark.parametrize("value, trusted", [(None, []), ("10.0.0.1,192.168.0.0/16", ["10.0.0.1", "192.168.0.0/16"])])
def test_gunicorn_trusts_forwarded_headers_only_from_forwarded_allow_ips(value, trusted, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FORWARDED_ALLOW_IPS"}
    env.update(DEVICE="cpu", PROMETHEUS_MULTIPROC_DIR=str(tmp_path), PORT="18080")
    if value is not None:
        env["FORWARDED_ALLOW_IPS"] = value
    done = subprocess.run([sys.executable, "-c", READ], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == trusted


NODELAY = """
import runpy, socket, types
namespace = runpy.run_path("gunicorn.conf.py")
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
before = listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
namespace["when_ready"](types.SimpleNamespace(LISTENERS=[types.SimpleNamespace(sock=listener)]))
client = socket.create_connection(listener.getsockname())
accepted, _ = listener.accept()
print(before, accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
"""


def test_every_accepted_connection_sends_without_nagle(tmp_path):
    """when_ready sets TCP_NODELAY on the listening sockets; accepted connections inherit it, so a
    response's body never waits for the client's delayed ACK after its headers."""
    env = {**os.environ, "DEVICE": "cpu", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PORT": "18080"}
    done = subprocess.run([sys.executable, "-c", NODELAY], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    before, accepted = done.stdout.strip().splitlines()[-1].split()
    assert before == "0" and accepted != "0"
