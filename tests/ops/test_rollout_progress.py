"""The wait of a rollout on a real Deployment, as the operator sees it: the bar counts the new
ReplicaSet's ready pods (none, while they never become ready), keeps its spinner and clock going until
the rollout ends, and the line says why the new pods are not ready, a readiness failure or the
scheduler's reason for a pending pod."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from ops import actions
from ops.kube import Cluster, Connection
from ops.output import Output
from tests.ops.conftest import IMAGE, Ops, install
from tests.support.kube import Kube

pytestmark = pytest.mark.slow

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def web(kube: Kube) -> Ops:
    # A long deadline: the waits below end by their own --timeout, with the pods still not ready.
    install(kube, "slow", "replicaCount=2", "progressDeadlineSeconds=600")
    return Ops(kube, "slow")


def test_the_plain_lines_count_the_new_pods_and_say_why_they_are_not_ready(web: Ops) -> None:
    result = web("rollout", f"{IMAGE}:never-ready", "--label", "inkwell.dev/simulate=never-ready",
                 "--timeout", "4", "--no-rollback")  # fmt: skip
    assert result.exit_code == 1
    progress = result.stderr.splitlines()[1:]  # after the line that says what changed
    lines = [line for line in progress if line.startswith("deployment/slow-inkwell: ")]
    assert lines
    # Never the old ReplicaSet's two ready pods counted as the rollout's.
    assert all(line.startswith("deployment/slow-inkwell: 0 of 2 new pods ready") for line in lines), lines
    assert "running, readiness probe not passing (ContainersNotReady)" in result.stderr
    assert "rollout FAILED: not done after 4s" in result.stdout
    assert "helm drift" not in result.stderr  # a failed change is not one to record in Helm
    undo = web("rollback")
    assert undo.exit_code == 0, undo.stderr


def test_the_live_bar_keeps_moving_until_the_rollout_ends(web: Ops) -> None:
    buffer = io.StringIO()
    out = Output(stderr=Console(file=buffer, force_terminal=True, width=250, color_system=None))
    cluster = Cluster(Connection(kubeconfig=web.kube.kubeconfig, namespace=web.kube.namespace))
    try:
        result = actions.rollout(cluster, out, release="slow", image=f"{IMAGE}:never-ready",
                                 labels={"inkwell.dev/simulate": "never-ready"}, roll_back=False, timeout=3)  # fmt: skip
    finally:
        cluster.close()
    assert (result.outcome.ok, result.outcome.reason) == (False, "Timeout")
    frames = [ANSI.sub("", line) for line in buffer.getvalue().splitlines()]
    last = [line for line in frames if "deployment/slow-inkwell" in line and "0/2" in line][-1]
    # A task rich took for finished (the old ReplicaSet's pods counted) shows no spinner and 0:00:00.
    assert any(frame in last for frame in "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"), last
    assert "0:00:00" not in last, last
    assert "readiness probe not passing" in last
    assert web("rollback").exit_code == 0


def test_a_pending_pod_says_what_the_scheduler_said(web: Ops) -> None:
    # No node has this label: the new pods stay Pending, Unschedulable.
    web.kube.kubectl("patch", "deployment", "slow-inkwell", "--type", "merge", "-p",
                     '{"spec": {"template": {"spec": {"nodeSelector": {"inkwell.dev/nowhere": "true"}}}}}')  # fmt: skip
    try:
        result = web("restart", "--timeout", "4")
        assert result.exit_code == 1
        assert "pending: Unschedulable: 0/2 nodes are available" in result.stderr, result.stderr
        assert "node affinity/selector" in result.stderr
    finally:
        web.kube.kubectl("patch", "deployment", "slow-inkwell", "--type", "json", "-p",
                         '[{"op": "remove", "path": "/spec/template/spec/nodeSelector"}]')  # fmt: skip
