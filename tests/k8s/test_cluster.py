"""The test cluster behaves like Kubernetes where the chart's tests need it to: a real API server at
the pinned version, nodes that run pods, rollouts that finish, and, on demand, pods that never
become ready and Jobs that fail. The same manifests behave the same way on a real cluster: the
never-ready pods name an image that does not exist, the Jobs really exit with their code."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
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


def _listening(pids: set[int]) -> dict[int, list[str]]:
    """The TCP addresses (ip:port) each of `pids` listens on, from /proc/net/tcp{,6} and its fds."""
    inodes: dict[str, int] = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes[target[8:-1]] = pid
    found: dict[int, list[str]] = {}
    for table, width in (("tcp", 4), ("tcp6", 16)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            address, port = local.split(":")
            raw = bytes.fromhex(address)
            # The kernel prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, width, 4))
            ip = ipaddress.ip_address(words)
            found.setdefault(inodes[inode], []).append(f"{ip}:{int(port, 16)}")
    return found


def test_every_component_of_the_local_cluster_listens_on_loopback_only(kube_cluster: Kube) -> None:
    if os.environ.get("INKWELL_E2E_KUBECONFIG"):
        pytest.skip("a cluster named by INKWELL_E2E_KUBECONFIG is not run by this machine's processes")
    state = str(Path(kube_cluster.kubeconfig).parent)
    processes: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                if any(state in arg.decode(errors="replace") for arg in argv):
                    processes[int(entry.name)] = Path(argv[0].decode()).name
    listening = _listening(set(processes))
    by_program = {processes[pid]: sorted(addresses) for pid, addresses in listening.items()}
    # etcd holds every Secret and asks no one for credentials; the API server is the cluster.
    assert {"etcd", "kube-apiserver"} <= set(by_program), by_program
    exposed = {
        program: [a for a in addresses if not ipaddress.ip_address(a.rsplit(":", 1)[0]).is_loopback]
        for program, addresses in by_program.items()
    }
    assert {program: a for program, a in exposed.items() if a} == {}, by_program
