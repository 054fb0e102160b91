"""Reading the connection budget back from the rendered objects, for the modules that test it: the pool
sizes the ConfigMap hands the service, the most pods Kubernetes can run at once, and why a render failed."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from tests.support.helm import CHART, helm, one

DEV = CHART / "ci" / "development-values.yaml"
PROD = CHART / "ci" / "production-values.yaml"
# The production and staging values run Redis (live updates reach every pod through it); this takes it
# away, and with it live updates (live.enabled null: off across several pods without Redis).
NO_REDIS = {"redis.enabled": "false"}
MIGRATION = 1  # Alembic on one connection (service/migrations/env.py)


def database_values(values: Path) -> dict[str, Any]:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["database"]
    return {**defaults, **(yaml.safe_load(values.read_text()).get("database") or {})}


def config(objects: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = one(objects, "ConfigMap", "-inkwell")["data"]
    return data


def pools(objects: list[dict[str, Any]]) -> tuple[int, int]:
    data = config(objects)
    return int(data["INKWELL_DB_POOL_SIZE"]), int(data["INKWELL_DB_MAX_OVERFLOW"])


def most_pods(objects: list[dict[str, Any]]) -> int:
    """The most pods that can exist at once, read from the objects Kubernetes acts on: the HPA's maximum
    (or the Deployment's replicas) and the rolling update's surge, rounded up as Kubernetes does."""
    deployment = one(objects, "Deployment")
    hpa = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    replicas = hpa[0]["spec"]["maxReplicas"] if hpa else deployment["spec"]["replicas"]
    surge = deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    assert surge.endswith("%"), surge
    return int(replicas + math.ceil(replicas * int(surge[:-1]) / 100))


def workers(objects: list[dict[str, Any]]) -> int:
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    return int(args[args.index("--workers") + 1])


def env(pod_owner: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The first container's environment by name: each entry as the pod spec has it."""
    container = pod_owner["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e for e in container["env"]}


def failure(*value_files: Path, **sets: str) -> str:
    args = ["template", "ink", str(CHART)]
    for path in value_files:
        args += ["-f", str(path)]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    result = helm(*args, check=False)
    assert result.returncode != 0, "rendered, but should have been refused"
    return result.stderr
