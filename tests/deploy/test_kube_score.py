"""Static checks of the rendered chart with kube-score (kube-linter's module is not served by the
Go module proxy here; kube-score covers the same ground: resources, probes, security context,
network policies, disruption budgets, HPA). Zero findings, except the checks below, each ignored on
purpose and for the reason given."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support.helm import CHART, CI_VALUES, helm
from tests.support.kube import tools_bin

pytestmark = pytest.mark.slow

IGNORED = {
    # CPU limits throttle a latency-sensitive service; requests drive scheduling and the HPA.
    "--ignore-container-cpu-limit": None,
    # Images are addressed by immutable tags (skaffold deploys by digest); Always adds a registry
    # round trip to every pod start.
    "container-image-pull-policy": "--ignore-test",
    # Pods are spread across nodes with topologySpreadConstraints, which schedule where
    # anti-affinity would leave a pod pending.
    "deployment-has-host-podantiaffinity": "--ignore-test",
}


def _args() -> list[str]:
    args: list[str] = []
    for name, flag in IGNORED.items():
        args += [flag, name] if flag else [name]
    return args


def _score(manifests: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [os.path.join(tools_bin(), "kube-score"), "score", "--output-format", "ci", *_args(), "-"],
        input=manifests,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_environment_renders_without_findings(values: object) -> None:
    manifests = helm("template", "inkwell", str(CHART), "-f", str(values)).stdout
    result = _score(manifests)
    findings = [line for line in result.stdout.splitlines() if line.startswith(("[CRITICAL]", "[WARNING]"))]
    if "development" in str(values):
        # One pod is the point of the development values.
        findings = [line for line in findings if "Deployment few replicas" not in line]
    assert findings == []
    assert "[OK]" in result.stdout


def test_kube_score_flags_a_bad_manifest() -> None:
    bad = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: bad}
spec:
  replicas: 1
  selector: {matchLabels: {app: bad}}
  template:
    metadata: {labels: {app: bad}}
    spec:
      containers:
        - name: bad
          image: bad:latest
          securityContext: {privileged: true}
"""
    result = _score(bad)
    assert result.returncode != 0
    assert "[CRITICAL]" in result.stdout
