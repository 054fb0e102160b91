"""The test cluster behaves like Kubernetes where the chart's tests need it to: a real API server at
the pinned version, nodes that run pods, rollouts that finish, and, on demand, pods that never
become ready and Jobs that fail. The same manifests behave the same way on a real cluster: the
never-ready pods name an image that does not exist, the Jobs really exit with their code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.kube import Kube

pytestmark = pytest.mark.slow

VERSIONS = dict(
    line.split("=", 1)
    for line in (Path(__file__).resolve().parents[2] / "k8s" / "versions.env").read_text().splitlines()
    if line and not line.startswith("#")
)


def _minor(version: str) -> int:
    return int(re.match(r"v?1\.(\d+)", version).group(1))  # type: ignore[union-attr]


def test_the_api_server_is_a_real_kubernetes_at_the_pinned_version(kube: Kube) -> None:
    versions = json.loads(kube.run("kubectl", "version", "-o", "json").stdout)
    assert versions["clientVersion"]["gitVersion"] == VERSIONS["KUBERNETES_VERSION"]
    # A named cluster (kind, staging) may differ by the skew kubectl supports.
    assert abs(_minor(versions["serverVersion"]["gitVersion"]) - _minor(VERSIONS["KUBERNETES_VERSION"])) <= 1
    nodes = json.loads(kube.run("kubectl", "get", "nodes", "-o", "json").stdout)["items"]
    ready = [
        n
        for n in nodes
        if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
    ]
    assert len(ready) >= 2


def test_a_deployment_rolls_out_across_nodes(kube: Kube) -> None:
    kube.kubectl("create", "deployment", "web", "--image=registry.k8s.io/pause:3.10", "--replicas=4")
    kube.kubectl("rollout", "status", "deployment/web", "--timeout=120s")
    deployment = kube.get("deployment", "web")
    assert deployment["status"]["readyReplicas"] == 4
    assert deployment["status"]["updatedReplicas"] == 4
    pods = json.loads(kube.kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
    assert {pod["status"]["phase"] for pod in pods} == {"Running"}
    assert len({pod["spec"]["nodeName"] for pod in pods}) >= 2


NEVER_READY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: stuck}
spec:
  replicas: 2
  progressDeadlineSeconds: 5
  selector: {matchLabels: {app: stuck}}
  template:
    metadata: {labels: {app: stuck, inkwell.dev/simulate: never-ready}}
    spec: {containers: [{name: app, image: "registry.invalid/inkwell:never-ready"}]}
"""


def test_pods_marked_never_ready_fail_the_rollout_by_its_deadline(kube: Kube) -> None:
    kube.kubectl("apply", "-f", "-", stdin=NEVER_READY)
    rollout = kube.kubectl("rollout", "status", "deployment/stuck", "--timeout=120s", check=False)
    assert rollout.returncode != 0
    assert "exceeded its progress deadline" in rollout.stderr
    conditions = {c["type"]: c for c in kube.get("deployment", "stuck")["status"]["conditions"]}
    assert conditions["Progressing"]["reason"] == "ProgressDeadlineExceeded"
    assert kube.get("deployment", "stuck")["status"].get("readyReplicas", 0) == 0


JOB = """
apiVersion: batch/v1
kind: Job
metadata: {{name: exit-{code}}}
spec:
  backoffLimit: 0
  template:
    metadata: {{labels: {{inkwell.dev/simulate: exit-{code}}}}}
    spec:
      restartPolicy: Never
      containers: [{{name: job, image: "busybox:1.36", command: [sh, -c, "exit {code}"]}}]
"""


@pytest.mark.parametrize(("code", "condition"), [(0, "Complete"), (1, "Failed")])
def test_a_job_pod_exits_with_the_code_it_is_marked_with(kube: Kube, code: int, condition: str) -> None:
    kube.kubectl("apply", "-f", "-", stdin=JOB.format(code=code))
    kube.kubectl("wait", f"--for=condition={condition}", f"job/exit-{code}", "--timeout=120s")
    pods = json.loads(kube.kubectl("get", "pods", "-l", f"job-name=exit-{code}", "-o", "json").stdout)[
        "items"
    ]
    (state,) = [
        status["state"]["terminated"] for pod in pods for status in pod["status"]["containerStatuses"]
    ]
    assert state["exitCode"] == code
