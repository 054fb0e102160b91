"""inkwell-ops end to end: the session's real cluster (tests/k8s), a fresh namespace per module, the chart
installed as each module needs it, and the CLI invoked in-process exactly as an operator types it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from typer.testing import CliRunner, Result

from ops.cli import app
from tests.support.helm import CHART
from tests.support.kube import Kube

IMAGE = "ghcr.io/inkwell/inkwell"
# Inline secrets so no Secret has to exist first; no migration hook, so installs take a second.
BASE_VALUES = (
    "secret.secretKey=test-secret-test-secret-test-secret-0123",
    "secret.databaseUrl=postgresql+asyncpg://inkwell:inkwell@postgres:5432/inkwell",
    "migrations.enabled=false",
    "image.tag=0.1.0",
)
NEVER_READY = "podLabels.inkwell\\.dev/simulate=never-ready"


def install(cluster: Kube, release: str, *values: str, wait: bool = True) -> None:
    args = ["helm", "install", release, str(CHART), "-n", cluster.namespace]
    for value in (*BASE_VALUES, *values):
        args += ["--set", value]
    if wait:
        args += ["--wait", "--timeout", "120s"]
    cluster.run(*args)


def eventually(check: Callable[[], Any], *, timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout}s")
        time.sleep(0.3)


@dataclass
class Ops:
    """`inkwell-ops --kubeconfig ... -n <namespace> -r <release>`, in this process."""

    kube: Kube
    release: str
    impersonate: str | None = None

    def __call__(self, *args: str, output: str | None = None) -> Result:
        argv = ["--kubeconfig", self.kube.kubeconfig, "-n", self.kube.namespace, "-r", self.release]
        if self.impersonate:
            argv += ["--as", self.impersonate]
        if output:
            argv += ["-o", output]
        return CliRunner().invoke(app, [*argv, *args])

    def json(self, *args: str) -> tuple[int, Any]:
        result = self(*args, output="json")
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result.exit_code, json.loads(result.stdout)

    def deployment(self) -> dict[str, Any]:
        (item,) = json.loads(
            self.kube.kubectl(
                "get", "deployments", "-l", f"app.kubernetes.io/instance={self.release}", "-o", "json"
            ).stdout
        )["items"]
        return dict(item)

    def pods(self) -> list[dict[str, Any]]:
        selector = f"app.kubernetes.io/instance={self.release},app.kubernetes.io/name=inkwell"
        items = json.loads(self.kube.kubectl("get", "pods", "-l", selector, "-o", "json").stdout)["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def problems(data: dict[str, Any]) -> dict[str, list[str]]:
    """Problem name -> the objects it was found on."""
    found: dict[str, list[str]] = {}
    for problem in data["problems"]:
        found.setdefault(problem["problem"], []).append(problem["object"])
    return found
