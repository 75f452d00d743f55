"""The buffering reverse proxy (deploy/nginx): its limits agree with the service's and compose's,
and Debian's nginx running the shipped configuration in front of a real Gunicorn keeps normal
requests fast while slow and idle clients (slowloris, trickled bodies, silent connections) hold
hundreds of connections (the same attack straight at Gunicorn is measured for comparison), passes
request ids and the service's headers, and forwards the client's address, which the service uses
(FORWARDED_ALLOW_IPS; the in-process cases are in test_forwarded.py)."""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Iterator

import pytest

from conftest import free_port
from embedding_service.config.settings import Settings
from support.slow_clients import call, summary, under_attack
from support.paths import ROOT
from support.servers import wait_healthy
from support.servers import start_gunicorn, stop

NGINX_DIR = os.path.join(ROOT, "deploy", "nginx")
TEMPLATE = "compose.conf.template"  # docker-compose.prod.yml's site, rendered by the image's entrypoint
SITES = ("sidecar.conf", TEMPLATE)
#: An `upstream NAME { ... }` block (its body may hold a template's `${NAME}`): (name, body).
UPSTREAM = re.compile(r"upstream\s+(\w+)\s*{((?:[^{}]|\$\{\w+\})*)}")


def read(name: str) -> str:
    with open(os.path.join(NGINX_DIR, name), encoding="utf-8") as handle:
        return handle.read()


def directives(text: str, name: str) -> list[str]:
    """The values of every `name ...;` directive in an nginx configuration text (comments dropped)."""
    text = re.sub(r"#[^\n]*", "", text)
    return [value.strip() for value in re.findall(rf"(?:^|[;{{}}\s]){name}\s+([^;]*);", text)]


def nginx_bytes(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", value).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit.lower()]


def nginx_seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h)?", value).groups()
    return int(number) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[unit]


def replaced(text: str, old: str, new: str, count: int = 1) -> str:
    """`text` with `old` -> `new`, which must occur exactly `count` times (the shipped file changed
    otherwise, and the test must say so rather than run something else)."""
    assert text.count(old) == count, f"expected {count} of {old!r} in the shipped configuration"
    return text.replace(old, new)


def envsubst(text: str, environment: dict[str, str]) -> str:
    """`text` as the nginx image's entrypoint renders a template (its 20-envsubst-on-templates.sh):
    every `$NAME` or `${NAME}` whose NAME is defined in `environment` becomes its value; any other
    `$...` (nginx's own variables) is left as it is."""
    return re.sub(r"\$(\{)?(\w+)(?(1)\})", lambda m: environment.get(m[2], m[0]), text)


def template_variables(text: str) -> set[str]:
    """The `${NAME}` references of a template: what its environment must define."""
    return set(re.findall(r"\$\{(\w+)\}", text))


def render(folder: str, site: str, upstreams: dict[str, str], listens: dict[str, str],
           environment: dict[str, str] | None = None) -> str:
    """The shipped configuration laid out under `folder` as the deployments mount it: nginx.conf
    with its /tmp/ paths moved into `folder`, errors.conf beside it, and `site` as
    conf.d/default.conf (a `.template` first rendered with `environment`, as the image does) with
    its upstream addresses and listen ports substituted. Returns the path of nginx.conf."""
    os.makedirs(os.path.join(folder, "conf.d"), exist_ok=True)
    main = read("nginx.conf")
    main = replaced(main, "/tmp/", f"{folder}/", count=main.count("/tmp/"))
    assert main.count(f"{folder}/") >= 6, "pid and the five temp paths live under /tmp"
    text = read(site)
    if site.endswith(".template"):
        assert set(environment or {}) >= template_variables(text), "every variable of the template is set"
        text = envsubst(text, environment)
    for old, new in upstreams.items():
        text = replaced(text, f"server {old};", f"server {new};")
    for old, new in listens.items():
        text = replaced(text, f"listen {old};", f"listen {new};")
    for name, content in (("nginx.conf", main), ("errors.conf", read("errors.conf")), ("conf.d/default.conf", text)):
        with open(os.path.join(folder, name), "w", encoding="utf-8") as handle:
            handle.write(content)
    return os.path.join(folder, "nginx.conf")


def nginx_binary() -> str:
    """Debian's nginx; skipped without it, unless REQUIRE_NGINX=1 (CI) makes that a failure."""
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if found is None:
        if os.environ.get("REQUIRE_NGINX") == "1":
            pytest.fail("nginx is not installed; CI installs it from Debian (.ci/run) and REQUIRE_NGINX=1 requires it")
        pytest.skip("nginx is not installed; CI installs it from Debian")
    return found


def nginx_args(binary: str, conf: str, folder: str, *extra: str) -> list[str]:
    """Run in the foreground with every path in `folder`. As root nginx would switch its workers to
    its compiled-in user, which cannot enter pytest's private temporary folders: keep them root."""
    user = " user root;" if os.geteuid() == 0 else ""
    return [binary, "-p", f"{folder}/", "-c", conf, "-e", os.path.join(folder, "early-error.log"),
            "-g", f"daemon off;{user}", *extra]


# ------------------------------------------------------------------ the configuration agrees with the service
def test_body_limit_is_the_service_max_content_length():
    limit = Settings.model_fields["max_content_length"].default
    (value,) = directives(read("nginx.conf"), "client_max_body_size")
    assert nginx_bytes(value) == limit
    assert f"MAX_CONTENT_LENGTH ({limit} bytes)" in read("errors.conf")


def test_upstream_timeouts_fit_gunicorn():
    """nginx waits longer for an answer than Gunicorn's worker timeout, and drops an idle upstream
    connection before Gunicorn's keep-alive does (so nginx rarely sends on a connection Gunicorn is
    closing; the retry covers the rest)."""
    from gunicorn.config import Config

    (read_timeout,) = directives(read("nginx.conf"), "proxy_read_timeout")
    assert nginx_seconds(read_timeout) > Settings.model_fields["timeout"].default
    with open(os.path.join(ROOT, "gunicorn.conf.py"), encoding="utf-8") as handle:
        assert not re.search(r"^keepalive\s*=", handle.read(), re.M), "gunicorn.conf.py keeps Gunicorn's keep-alive"
    for site in SITES:
        text = read(site)
        upstreams = [block for _, block in UPSTREAM.findall(text)]
        assert upstreams, site
        for block in upstreams:
            assert int(directives(block, "keepalive")[0]) > 0
            assert nginx_seconds(directives(block, "keepalive_timeout")[0]) < Config().keepalive


def site_upstream(site: str, upstream: str) -> tuple[dict[str, str], dict[str, str]]:
    """What sends `site`'s one upstream to `upstream`: (upstreams for render(), environment for
    render()). A template's upstream is its variable, set in the environment as compose does."""
    text = read(site)
    (address,) = re.findall(r"server\s+(\S+);", text)
    if site.endswith(".template"):
        (variable,) = template_variables(address)
        return {}, {variable: upstream}
    return {address: upstream}, {}


@pytest.mark.parametrize("site", SITES)
def test_shipped_configuration_passes_nginx_t(site, tmp_path):
    binary = nginx_binary()
    text = read(site)
    upstreams, environment = site_upstream(site, f"127.0.0.1:{free_port()}")
    listens = {port: f"127.0.0.1:{free_port()}" for port in re.findall(r"listen\s+(\S+);", text)}
    conf = render(str(tmp_path), site, upstreams, listens, environment)
    with open(os.path.join(tmp_path, "conf.d", "default.conf"), encoding="utf-8") as handle:
        assert "$" not in handle.read(), "the site file names no variable once rendered"
    done = subprocess.run(nginx_args(binary, conf, str(tmp_path), "-t"), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_compose_puts_one_proxy_in_front_of_each_service():
    """docker-compose.prod.yml: one nginx per service (a pinned Debian-based image), each depending
    on its own service only (so a host without a GPU runs the CPU one alone), mounting the shipped
    files read-only with the one site template, which the image renders into the folder nginx.conf
    includes; each publishes the port its service publishes in the development compose file, and
    its environment sends the template's upstream to its service by name and PORT. The services
    publish nothing and trust forwarded addresses; each proxy starts after its service (healthy),
    is restarted with it, and stops first, gracefully, within its grace period."""
    import yaml

    with open(os.path.join(ROOT, "docker-compose.prod.yml"), encoding="utf-8") as handle:
        services = yaml.safe_load(handle)["services"]
    with open(os.path.join(ROOT, "docker-compose.yml"), encoding="utf-8") as handle:
        development = yaml.safe_load(handle)["services"]
    site = read(TEMPLATE)
    # the template's only substitution is its upstream: the image replaces nothing else
    (upstream_name, block), = UPSTREAM.findall(site)
    (address,) = directives(block, "server")
    (variable,) = template_variables(address)
    assert re.findall(r"\$\{?\w+\}?", site) == [address]
    (server,) = re.findall(r"^server\s*{(.*?)^}", site, re.M | re.S)
    (listen,) = directives(server, "listen")
    assert re.findall(r"proxy_pass\s+http://(\w+);", server) == [upstream_name]
    (include,) = directives(read("nginx.conf").split("http {", 1)[1], "include")

    proxies = {name: service for name, service in services.items() if service.get("image", "").startswith("nginx:")}
    assert set(proxies) == {"proxy-cpu", "proxy-gpu"}
    for name in ("embedding-service-cpu", "embedding-service-gpu"):
        service, proxy = services[name], services[f"proxy-{name.rsplit('-', 1)[1]}"]
        assert "ports" not in service and service["environment"]["FORWARDED_ALLOW_IPS"] == "*"
        assert re.fullmatch(r"nginx:\d+\.\d+\.\d+-bookworm", proxy["image"]), proxy["image"]
        mounts = {}
        for volume in proxy["volumes"]:
            source, target, mode = volume.split(":")
            assert mode == "ro" and os.path.isfile(os.path.join(ROOT, source))
            mounts[target] = source
        assert mounts == {"/etc/nginx/nginx.conf": "./deploy/nginx/nginx.conf",
                          "/etc/nginx/errors.conf": "./deploy/nginx/errors.conf",
                          "/etc/nginx/templates/default.conf.template": f"./deploy/nginx/{TEMPLATE}"}
        # the image renders templates/X.template to conf.d/X, which nginx.conf's include must take
        rendered = "conf.d/default.conf"
        assert fnmatch.fnmatch(rendered, include), (rendered, include)
        assert proxy["environment"] == {variable: f"{name}:{service['environment']['PORT']}"}
        (published,) = [str(p).split(":")[0] for p in development[name]["ports"]]
        assert [str(p) for p in proxy["ports"]] == [f"{published}:{listen}"]
        assert proxy["depends_on"] == {name: {"condition": "service_healthy", "restart": True}}
        assert proxy["stop_signal"] == "SIGQUIT"  # graceful: requests in flight finish
        (drain,) = directives(read("nginx.conf"), "worker_shutdown_timeout")
        assert nginx_seconds(drain) < nginx_seconds(proxy["stop_grace_period"])


# ------------------------------------------------------------------ nginx in front of a real Gunicorn
RATE_LIMIT = 100  # per client address and minute: more than one attack's 60 trickled bodies from one address


@dataclass
class Proxied:
    nginx: int  # nginx's port
    gunicorn: int  # Gunicorn's port
    access_log: str  # nginx's access log (JSON lines)
    service_log: str  # Gunicorn's output (JSON lines)


@contextlib.contextmanager
def running_nginx(folder: str, site: str, upstream: str, port: int) -> Iterator[str]:
    """nginx running the shipped configuration with `site` (its one upstream -> `upstream`, its
    listen port -> 127.0.0.1:`port`) until the block ends; yields the path of its access log."""
    binary = nginx_binary()
    (listen,) = re.findall(r"listen\s+(\S+);", read(site))
    upstreams, environment = site_upstream(site, upstream)
    conf = render(folder, site, upstreams, {listen: f"127.0.0.1:{port}"}, environment)
    with open(os.path.join(folder, "access.log"), "w") as out, open(os.path.join(folder, "error.log"), "w") as err:
        nginx = subprocess.Popen(nginx_args(binary, conf, folder), stdout=out, stderr=err)
        try:
            deadline = time.monotonic() + 15
            while True:
                assert nginx.poll() is None, open(err.name).read()
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "nginx did not listen within 15 s"
                    time.sleep(0.05)
            yield out.name
        finally:
            nginx.terminate()
            try:
                nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait(timeout=10)


@pytest.mark.parametrize("site", SITES)
def test_nginx_answers_503_with_retry_after_while_the_service_is_down(site, tmp_path):
    port = free_port()
    with running_nginx(str(tmp_path), site, f"127.0.0.1:{free_port()}", port):  # nothing listens there
        down = call(port, headers={"X-Request-ID": "proxy-down"})
    assert down.status == 503 and int(down.headers["retry-after"]) >= 1
    assert down.headers["content-type"] == "application/json" and down.headers["x-request-id"] == "proxy-down"
    assert json.loads(down.body)["error"]["type"] == "service_unavailable"


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    """One Gunicorn worker (LOG_FORMAT=json, FORWARDED_ALLOW_IPS=127.0.0.1, RATE_LIMIT per client)
    behind nginx running the shipped nginx.conf + errors.conf + sidecar.conf, on free loopback ports."""
    nginx_binary()  # skip (or fail) before starting Gunicorn
    folder = tmp_path_factory.mktemp("proxy")
    url, gunicorn = start_gunicorn(
        folder, WORKERS="1", LOG_FORMAT="json", FORWARDED_ALLOW_IPS="127.0.0.1", GRACEFUL_TIMEOUT="5",
        RATE_LIMIT_REQUESTS=str(RATE_LIMIT), RATE_LIMIT_WINDOW="60",
    )
    gunicorn_port, nginx_port = int(url.rsplit(":", 1)[1]), free_port()
    try:
        wait_healthy(url, gunicorn, workers=1)
        with running_nginx(str(folder / "nginx"), "sidecar.conf", f"127.0.0.1:{gunicorn_port}", nginx_port) as log:
            yield Proxied(nginx_port, gunicorn_port, log, str(folder / f"gunicorn-{gunicorn_port}.log"))
    finally:
        stop(gunicorn)


def json_lines(path: str) -> list[dict]:
    """The JSON objects of a log, one per line (other lines skipped)."""
    lines = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
    return lines


@pytest.mark.slow
def test_slow_and_idle_clients_do_not_delay_requests_through_nginx(proxied, capsys):
    """150 slowloris, 60 slow-body and 100 idle connections held against nginx: 20 normal requests
    (4 at a time, each on a new connection) all answer 200 in under 2 s while every one of those
    connections is still open. Then the same attack straight at Gunicorn, for comparison (reported,
    not asserted: it shows what the proxy absorbs)."""
    answers, held, ran = under_attack(proxied.nginx, requests=20, concurrency=4, timeout=10, source="127.0.0.7")
    assert [a.status for a in answers] == [200] * 20, summary(answers)
    assert max(a.seconds for a in answers) < 2.0, summary(answers)
    assert held == {"slowloris": 150, "slow_body": 60, "idle": 100}, (held, ran)

    # the control: 4 requests straight at Gunicorn (one worker, 32 threads) under the same attack
    direct, direct_held, _ = under_attack(proxied.gunicorn, requests=4, concurrency=4, timeout=5, source="127.0.0.4")
    with capsys.disabled():
        print(f"\n[proxy] through nginx under attack: {summary(answers)}; attack held {held} for {ran:.1f} s"
              f"\n[proxy] straight at Gunicorn under the same attack: {summary(direct)}; held {direct_held}")


@pytest.mark.slow
def test_through_nginx_request_ids_headers_and_client_addresses(proxied):
    # the client's request id goes through and comes back; without one, nginx's goes to the service
    given = call(proxied.nginx, source="127.0.0.5", headers={"X-Request-ID": "proxy-given-id"})
    assert given.status == 200 and given.headers["x-request-id"] == "proxy-given-id"
    assert {"x-total-time", "x-queue-time", "x-inference-time", "x-ratelimit-remaining"} <= set(given.headers)
    made = call(proxied.nginx, source="127.0.0.5")
    assert made.status == 200 and re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert "server" not in made.headers or "nginx/" not in made.headers["server"]

    # rate limits are per client behind the proxy: 127.0.0.2 spends its budget, then is refused with
    # the service's Retry-After, even when it claims another address; 127.0.0.3 still has its own
    for _ in range(RATE_LIMIT):
        assert call(proxied.nginx, "GET", "/v1/models", source="127.0.0.2").status == 200
    refused = call(proxied.nginx, "GET", "/v1/models", source="127.0.0.2")
    assert refused.status == 429 and int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-limit"] == str(RATE_LIMIT) and refused.headers["x-ratelimit-remaining"] == "0"
    assert json.loads(refused.body)["error"]["type"] == "rate_limit_error"
    spoofed = call(proxied.nginx, "GET", "/v1/models", source="127.0.0.2", headers={"X-Forwarded-For": "127.0.0.3"})
    assert spoofed.status == 429
    other = call(proxied.nginx, "GET", "/v1/models", source="127.0.0.3", headers={"X-Request-ID": "proxy-other"})
    assert other.status == 200

    # nginx's 413 for a body over client_max_body_size is the service's own 413
    limit = Settings.model_fields["max_content_length"].default
    over = {"Content-Length": str(limit + 1)}
    from_nginx = call(proxied.nginx, source="127.0.0.6", headers=over, body=b"")
    from_service = call(proxied.gunicorn, source="127.0.0.6", headers=over, body=b"")
    assert from_nginx.status == from_service.status == 413
    assert json.loads(from_nginx.body) == json.loads(from_service.body)
    assert re.fullmatch(r"[0-9a-f]{32}", from_nginx.headers["x-request-id"])

    deadline = time.monotonic() + 5  # the logs are written as the responses go out
    while True:
        service = {line.get("request_id"): line for line in json_lines(proxied.service_log) if "request_id" in line}
        proxy = {line["request_id"]: line for line in json_lines(proxied.access_log)}
        if {"proxy-given-id", "proxy-other", made.headers["x-request-id"]} <= set(service) & set(proxy):
            break
        assert time.monotonic() < deadline, (sorted(service)[-5:], sorted(proxy)[-5:])
        time.sleep(0.1)
    assert service["proxy-given-id"]["remote"] == "127.0.0.5"  # the client, not the proxy's 127.0.0.1
    assert service["proxy-other"]["remote"] == "127.0.0.3"
    assert service[made.headers["x-request-id"]]["remote"] == "127.0.0.5"
    assert proxy["proxy-other"]["remote"] == "127.0.0.3" and proxy["proxy-other"]["status"] == 200
