"""What a wait says while it waits and what `rollback` picks, as pure functions over ops.model: why new
pods are not ready (pending, waiting, a failed probe, the Ready condition), which revision is the last
good one, and where a release differs from what Helm rendered. The same paths run on the real cluster in
test_rollout_progress.py, test_revisions.py and test_helm_drift.py."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from rich.console import Console

from ops import drift, views
from ops.model import Condition, ContainerInfo, DeploymentInfo, EventInfo, HpaInfo, PodInfo, Revision
from ops.progress import pod_reason, why_not_ready
from ops.rollout import previous_revision

WHEN = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _pod(name: str, phase: str = "Running", *, ready: bool = False, containers: list[ContainerInfo] | None = None,
         conditions: list[Condition] | None = None) -> PodInfo:  # fmt: skip
    return PodInfo(name, phase, ready, 0, WHEN, "node-0", "abc", False, containers or [], conditions or [])


def _running(name: str = "inkwell") -> ContainerInfo:
    return ContainerInfo(name, "img:2", False, 0, "running")


def test_a_pending_pod_says_what_the_scheduler_said() -> None:
    unscheduled = Condition(
        "PodScheduled", "False", "Unschedulable", "0/2 nodes are available: 2 Insufficient cpu."
    )
    pod = _pod("web-1", "Pending", conditions=[unscheduled])
    assert pod_reason(pod, []) == "pending: Unschedulable: 0/2 nodes are available: 2 Insufficient cpu."
    assert pod_reason(_pod("web-2", "Pending"), []) == "pending: not scheduled yet"


def test_a_waiting_container_says_its_reason_and_message() -> None:
    waiting = ContainerInfo(
        "inkwell", "img:nope", False, 0, "waiting", "ImagePullBackOff", 'Back-off pulling "img:nope"'
    )
    scheduled = Condition("PodScheduled", "True")
    pod = _pod("web-1", "Pending", containers=[waiting], conditions=[scheduled])
    assert pod_reason(pod, []) == 'container inkwell waiting: ImagePullBackOff: Back-off pulling "img:nope"'


def test_a_running_pod_that_is_not_ready_says_what_its_probe_got() -> None:
    pod = _pod(
        "web-1", containers=[_running()], conditions=[Condition("Ready", "False", "ContainersNotReady")]
    )
    assert pod_reason(pod, []) == "running, readiness probe not passing (ContainersNotReady)"
    probe = EventInfo(
        "Warning",
        "Unhealthy",
        "Pod",
        "web-1",
        "Readiness probe failed: HTTP probe failed with statuscode: 503",
        4,
        WHEN,
    )
    other = EventInfo("Warning", "Unhealthy", "Pod", "web-9", "Readiness probe failed: timeout", 1, WHEN)
    assert (
        pod_reason(pod, [probe, other])
        == "Unhealthy: Readiness probe failed: HTTP probe failed with statuscode: 503"
    )


def test_ready_pods_have_no_reason_and_the_others_are_counted_by_reason() -> None:
    not_ready = [Condition("Ready", "False", "ContainersNotReady")]
    pods = [
        _pod("web-1", ready=True, containers=[_running()]),
        _pod("web-2", containers=[_running()], conditions=not_ready),
        _pod("web-3", containers=[_running()], conditions=not_ready),
        _pod(
            "web-4", "Pending", conditions=[Condition("PodScheduled", "False", "Unschedulable", "no nodes")]
        ),
    ]
    assert pod_reason(pods[0], []) == ""
    assert why_not_ready(pods, []) == (
        "2 pods running, readiness probe not passing (ContainersNotReady); 1 pod pending: Unschedulable: no nodes"
    )
    assert why_not_ready(pods[:1], []) == ""


def _revision(number: int, outcome: str = "", rolled_back: bool = False, current: bool = False) -> Revision:
    return Revision(number, f"web-{number}", {"inkwell": f"img:{number}"}, WHEN, 0, 0, current,
                    outcome=outcome, rolled_back_at=WHEN if rolled_back else None)  # fmt: skip


def test_the_previous_revision_is_the_last_good_one() -> None:
    # 2 good, 3 failed and rolled back by rollout itself, 4 the template of 2 again.
    revisions = [
        _revision(1, "complete"),
        _revision(3, "failed", rolled_back=True),
        _revision(4, "complete", current=True),
    ]
    previous = previous_revision(revisions, 4)
    assert previous is not None
    assert previous.revision == 1
    # An operator's rollback from a revision marks it too; with nothing good left there is no previous.
    assert (
        previous_revision(
            [_revision(3, "failed"), _revision(4, rolled_back=True), _revision(5, current=True)], 5
        )
        is None
    )
    # Revisions inkwell-ops never saw (kubectl, helm) count as good, as kubectl counts every one.
    unmarked = previous_revision([_revision(1), _revision(2), _revision(3, current=True)], 3)
    assert unmarked is not None
    assert unmarked.revision == 2


def test_history_marks_failed_and_rolled_back_revisions() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, color_system=None)
    failed = Revision(3, "web-3", {"inkwell": "img:3"}, WHEN, 0, 0, False, outcome="failed",
                      outcome_reason="ProgressDeadlineExceeded", rolled_back_at=WHEN)  # fmt: skip
    current = Revision(
        4, "web-2", {"inkwell": "img:2"}, WHEN, 2, 2, True, outcome="complete", current_since=WHEN
    )
    views.history(console, [failed, current], WHEN.replace(minute=5))
    lines = buffer.getvalue().splitlines()
    assert "CURRENT SINCE" in lines[1]
    assert "ROLLOUT" in lines[1]
    assert "failed (ProgressDeadlineExceeded), rolled back (5m ago)" in lines[2]
    assert lines[3].split()[4:] == ["5m", "2/2", "complete", "current"]


def _deployment(image: str, replicas: int, stamp: dict[str, str]) -> DeploymentInfo:
    return DeploymentInfo("web-inkwell", "apps", 2, {"inkwell": image}, replicas, replicas, replicas, replicas,
                          replicas, 2, 2, False, 120, {}, helm_stamp=stamp)  # fmt: skip


def test_drift_is_what_differs_from_the_charts_stamp_with_the_values_that_record_it() -> None:
    stamp = {"image": "ghcr.io/inkwell/inkwell:0.1.0", "replicas": "2"}
    assert drift.find(_deployment("ghcr.io/inkwell/inkwell:0.1.0", 2, stamp), None) == []
    found = drift.find(_deployment("ghcr.io/inkwell/inkwell:0.2.0", 3, stamp), None)
    assert [(d.field, d.live, d.helm, d.values) for d in found] == [
        ("image", "ghcr.io/inkwell/inkwell:0.2.0", "ghcr.io/inkwell/inkwell:0.1.0", ["image.tag=0.2.0"]),
        ("replicas", "3", "2", ["replicaCount=3"]),
    ]
    assert drift.helm_command("web", "apps", found) == (
        "helm upgrade web charts/inkwell -n apps --reuse-values --set image.tag=0.2.0 --set replicaCount=3"
    )
    moved = drift.find(_deployment("registry.example.com:5000/inkwell:0.2.0", 2, stamp), None)
    assert moved[0].values == ["image.repository=registry.example.com:5000/inkwell", "image.tag=0.2.0"]
    # No stamp (a release from an older chart, or not from Helm): nothing to compare with.
    assert drift.find(_deployment("ghcr.io/inkwell/inkwell:0.2.0", 3, {}), None) == []


def test_with_an_hpa_the_bounds_drift_and_the_replica_count_is_the_hpas() -> None:
    hpa = HpaInfo("web-inkwell", 5, 6, 5, 5, helm_stamp={"min-replicas": "2", "max-replicas": "6"})
    found = drift.find(_deployment("img:1", 5, {"image": "img:1"}), hpa)
    assert [(d.object, d.field, d.values) for d in found] == [
        ("horizontalpodautoscaler/web-inkwell", "minReplicas", ["autoscaling.minReplicas=5"])
    ]
