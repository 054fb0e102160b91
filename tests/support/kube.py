"""A Kubernetes cluster for the end-to-end tests: the one named by INKWELL_E2E_KUBECONFIG (kind, a
staging cluster), or else a private one started by scripts/cluster.sh and deleted afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Kube:
    kubeconfig: str
    bin_dir: str
    namespace: str = "default"

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": self.kubeconfig, "PATH": f"{self.bin_dir}:{os.environ['PATH']}"}

    def run(
        self, *args: str, check: bool = True, timeout: float = 180, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            env=self.env(),
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
            input=stdin,
        )

    def kubectl(
        self, *args: str, check: bool = True, timeout: float = 180, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.run("kubectl", "-n", self.namespace, *args, check=check, timeout=timeout, stdin=stdin)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return dict(json.loads(self.kubectl("get", kind, name, "-o", "json").stdout))


def versions() -> dict[str, str]:
    lines = (ROOT / "k8s" / "versions.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def prometheus_operator_crds() -> list[Path]:
    """The monitoring.coreos.com CRDs the chart uses, from the prometheus-operator Go module."""
    version = versions()["PROMETHEUS_OPERATOR_VERSION"]
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"github.com/prometheus-operator/prometheus-operator@{version}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
    )
    directory = Path(json.loads(result.stdout)["Dir"]) / "example" / "prometheus-operator-crd"
    return [
        directory / f"monitoring.coreos.com_{name}.yaml" for name in ("servicemonitors", "prometheusrules")
    ]


def tools_bin() -> str:
    return subprocess.run(
        [str(ROOT / "scripts" / "k8s-tools.sh")], capture_output=True, text=True, check=True, timeout=3600
    ).stdout.strip()


@contextlib.contextmanager
def cluster() -> Iterator[Kube]:
    existing = os.environ.get("INKWELL_E2E_KUBECONFIG")
    if existing:
        yield Kube(kubeconfig=existing, bin_dir=tools_bin())
        return
    state = Path(tempfile.mkdtemp(prefix="inkwell-cluster-"))
    env = {
        **os.environ,
        "INKWELL_CLUSTER_STATE": str(state),
        "INKWELL_CLUSTER_NAME": f"inkwell-test-{os.getpid()}",
    }
    script = str(ROOT / "scripts" / "cluster.sh")
    subprocess.run([script, "up"], env=env, check=True, capture_output=True, text=True, timeout=3600)
    try:
        yield Kube(kubeconfig=str(state / "kubeconfig"), bin_dir=tools_bin())
    finally:
        subprocess.run([script, "down"], env=env, capture_output=True, timeout=300)
