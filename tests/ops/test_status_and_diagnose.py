"""`status` and `diagnose` on releases the chart really installed: a healthy one (exit 0) and each broken state
the test cluster can produce (exit 3, with the finding named and explained). KWOK cannot crash containers or
fail image pulls, so those pods get the status a kubelet would write, through the status subresource."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.ops.conftest import IMAGE, NEVER_READY, Ops, eventually, install, problems
from tests.support.kube import Kube

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(kube: Kube) -> Kube:
    """Every release at once, so that their deadlines and the HPA's first sync pass at the same time."""
    install(kube, "stuck", NEVER_READY, "progressDeadlineSeconds=3", wait=False)
    install(kube, "big", "replicaCount=1", "resources.requests.cpu=1k", wait=False)
    install(
        kube, "pinned", "autoscaling.enabled=true", "autoscaling.minReplicas=2", "autoscaling.maxReplicas=2"
    )
    install(kube, "ok", "replicaCount=2")
    return kube


@pytest.fixture(scope="module")
def healthy(installed: Kube) -> Ops:
    return Ops(installed, "ok")


@pytest.fixture(scope="module")
def stuck(installed: Kube) -> Ops:
    """Every pod runs and never becomes ready; the rollout passes its deadline."""
    kube = installed
    ops = Ops(kube, "stuck")
    eventually(
        lambda: any(
            c.get("reason") == "ProgressDeadlineExceeded"
            for c in ops.deployment()["status"].get("conditions", [])
        ),
        what="ProgressDeadlineExceeded",
    )
    pods = eventually(
        lambda: [p for p in ops.pods() if p["status"].get("phase") == "Running"], what="running pods"
    )
    # The kubelet's event for a failing readiness probe, as it would report it.
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": "stuck-probe-", "namespace": kube.namespace},
        "involvedObject": {"kind": "Pod", "name": pods[0]["metadata"]["name"], "namespace": kube.namespace},
        "reason": "Unhealthy",
        "type": "Warning",
        "message": "Readiness probe failed: HTTP probe failed with statuscode: 503",
        "source": {"component": "kubelet"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 4,
    }
    kube.kubectl("create", "-f", "-", stdin=json.dumps(event))
    return ops


@pytest.fixture(scope="module")
def unschedulable(installed: Kube) -> Ops:
    ops = Ops(installed, "big")
    eventually(
        lambda: any(
            c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable"
            for p in ops.pods()
            for c in p["status"].get("conditions", [])
        ),
        what="an Unschedulable pod",
    )
    return ops


@pytest.fixture(scope="module")
def pinned(installed: Kube) -> Ops:
    def synced() -> bool:
        status = json.loads(installed.kubectl("get", "hpa", "pinned-inkwell", "-o", "json").stdout)["status"]
        conditions = {c["type"] for c in status.get("conditions", [])}
        return status.get("currentReplicas") == 2 and "ScalingActive" in conditions

    eventually(synced, what="the HPA's first sync")
    return Ops(installed, "pinned")


def _container_status(
    image: str, *, state: dict[str, object], restarts: int, last: dict[str, object]
) -> dict[str, object]:
    return {
        "name": "inkwell",
        "image": image,
        "imageID": "",
        "ready": False,
        "started": False,
        "restartCount": restarts,
        "state": state,
        "lastState": last,
    }


@pytest.fixture(scope="module")
def kubelet_failures(kube: Kube) -> tuple[Ops, dict[str, str]]:
    """Three pods, given the status a kubelet writes for a crash loop, a failed pull and an OOM kill."""
    install(kube, "sim", "replicaCount=3")
    ops = Ops(kube, "sim")
    names = sorted(p["metadata"]["name"] for p in ops.pods())
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    image = f"{IMAGE}:0.1.0"
    terminated = {"startedAt": now, "finishedAt": now}
    statuses = {
        "CrashLoopBackOff": _container_status(
            image,
            state={
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": "back-off 2m40s restarting failed container",
                }
            },
            restarts=6,
            last={"terminated": {"exitCode": 3, "reason": "Error", **terminated}},
        ),
        "ImagePullBackOff": _container_status(
            image,
            state={"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}},
            restarts=0,
            last={},
        ),
        "OOMKilled": _container_status(
            image,
            state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
            restarts=2,
            last={"terminated": {"exitCode": 137, "reason": "OOMKilled", **terminated}},
        ),
    }
    pods = dict(zip(statuses, names, strict=True))
    for problem, pod in pods.items():
        status = {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "ContainersNotReady",
                    "lastTransitionTime": now,
                }
            ],
            "containerStatuses": [statuses[problem]],
        }
        kube.kubectl(
            "patch", "pod", pod, "--subresource=status", "--type=merge", "-p", json.dumps({"status": status})
        )
    return ops, pods


def test_status_of_a_healthy_release_exits_0_and_shows_every_part(healthy: Ops) -> None:
    code, data = healthy.json("status")
    assert code == 0
    assert data["healthy"] is True
    assert data["problems"] == []
    state = data["state"]
    deployment = state["deployment"]
    assert deployment["name"] == "ok-inkwell"
    assert deployment["images"] == {"inkwell": f"{IMAGE}:0.1.0"}
    assert (deployment["desired"], deployment["updated"], deployment["ready"], deployment["available"]) == (
        2,
        2,
        2,
        2,
    )
    assert deployment["revision"] == 1
    assert len(state["pods"]) == 2
    assert all(
        p["phase"] == "Running" and p["ready"] and p["node"].startswith("node-") for p in state["pods"]
    )
    assert state["hpa"] is None
    assert [(p["name"], p["disruptions_allowed"]) for p in state["pdbs"]] == [("ok-inkwell", 1)]
    assert state["ingresses"] == [
        {"name": "ok-inkwell", "hosts": ["inkwell.example.com"], "services": ["ok-inkwell"]}
    ]
    assert state["services"] == [{"name": "ok-inkwell", "ready_endpoints": 2, "not_ready_endpoints": 0}]


def test_status_table_names_the_release_its_image_and_pods(healthy: Ops) -> None:
    result = healthy("status")
    assert result.exit_code == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert (
        first
        == f"ok in {healthy.kube.namespace}: deployment/ok-inkwell revision 1 (inkwell={IMAGE}:0.1.0), healthy"
    )
    for pod in healthy.pods():
        assert pod["metadata"]["name"] in result.stdout
    assert "inkwell.example.com" in result.stdout
    assert "No problems found." in result.stdout


def test_diagnose_finds_nothing_on_a_healthy_release(healthy: Ops) -> None:
    code, data = healthy.json("diagnose")
    assert (code, data) == (0, {"problems": []})


def test_an_unknown_release_fails_with_exit_1(healthy: Ops) -> None:
    result = Ops(healthy.kube, "nope")("status")
    assert result.exit_code == 1
    assert "no Deployment labelled app.kubernetes.io/instance=nope" in result.stderr


def test_status_of_a_release_whose_pods_never_become_ready_exits_3(stuck: Ops) -> None:
    code, data = stuck.json("status")
    assert code == 3
    assert data["healthy"] is False
    assert {"StuckRollout", "NoReadyEndpoints", "NotReady", "PdbBlocksDrains"} <= set(problems(data))
    table = stuck("status")
    assert table.exit_code == 3
    assert "degraded" in table.stdout.splitlines()[0]


def test_diagnose_explains_a_stuck_rollout_unready_pods_no_endpoints_and_a_blocking_pdb(stuck: Ops) -> None:
    code, data = stuck.json("diagnose")
    assert code == 3
    found = problems(data)
    assert found["StuckRollout"] == ["deployment/stuck-inkwell"]
    assert found["Unavailable"] == ["deployment/stuck-inkwell"]
    assert found["NoReadyEndpoints"] == ["service/stuck-inkwell"]
    assert found["PdbBlocksDrains"] == ["poddisruptionbudget/stuck-inkwell"]
    assert sorted(found["NotReady"]) == sorted(f"pod/{p['metadata']['name']}" for p in stuck.pods())
    (rollout,) = [p for p in data["problems"] if p["problem"] == "StuckRollout"]
    assert "made no progress in 3s" in rollout["detail"]
    assert "rollback" in rollout["advice"]
    # The probe's own failure message, from the kubelet's event, is what an operator needs to see.
    probed = [p for p in data["problems"] if p["problem"] == "NotReady" and "503" in p["detail"]]
    assert len(probed) == 1
    assert "Readiness probe failed: HTTP probe failed with statuscode: 503" in probed[0]["detail"]
    for problem in data["problems"]:
        assert problem["advice"]


def test_diagnose_explains_an_unschedulable_pod(unschedulable: Ops) -> None:
    code, data = unschedulable.json("diagnose")
    assert code == 3
    (finding,) = [p for p in data["problems"] if p["problem"] == "Unschedulable"]
    assert finding["object"] == f"pod/{unschedulable.pods()[0]['metadata']['name']}"
    assert "Insufficient cpu" in finding["detail"]
    assert "resources.requests" in finding["advice"]


def test_diagnose_explains_an_hpa_pinned_at_its_maximum(pinned: Ops) -> None:
    code, data = pinned.json("diagnose")
    assert code == 3
    found = problems(data)
    assert found["HpaAtMax"] == ["horizontalpodautoscaler/pinned-inkwell"]
    # The test cluster has no metrics-server: the HPA says so, and so does diagnose.
    assert found["HpaMetricsUnavailable"] == ["horizontalpodautoscaler/pinned-inkwell"]
    _, status = pinned.json("status")
    hpa = status["state"]["hpa"]
    assert (hpa["min_replicas"], hpa["max_replicas"], hpa["current_replicas"]) == (2, 2, 2)
    assert hpa["metrics"] == [{"name": "resource/cpu", "current": "<unknown>", "target": "70%"}]


def test_diagnose_explains_crash_loops_failed_pulls_and_oom_kills(
    kubelet_failures: tuple[Ops, dict[str, str]],
) -> None:
    ops, pods = kubelet_failures
    code, data = ops.json("diagnose")
    assert code == 3
    found = problems(data)
    # An OOM-killed container restarts into a crash loop too: both are reported for that pod.
    assert sorted(found["CrashLoopBackOff"]) == sorted(
        [f"pod/{pods['CrashLoopBackOff']}", f"pod/{pods['OOMKilled']}"]
    )
    assert found["ImagePullBackOff"] == [f"pod/{pods['ImagePullBackOff']}"]
    assert found["OOMKilled"] == [f"pod/{pods['OOMKilled']}"]
    detail = {(p["problem"], p["object"]): p for p in data["problems"]}
    crash = detail["CrashLoopBackOff", f"pod/{pods['CrashLoopBackOff']}"]
    assert "Error with code 3, 6 restarts" in crash["detail"]
    assert "--previous" in crash["advice"]
    assert (
        f"cannot pull {IMAGE}:0.1.0"
        in detail["ImagePullBackOff", f"pod/{pods['ImagePullBackOff']}"]["detail"]
    )
    assert "resources.limits.memory" in detail["OOMKilled", f"pod/{pods['OOMKilled']}"]["advice"]
    assert found["Unavailable"] == ["deployment/sim-inkwell"]
    _, status = ops.json("status")
    last = {p["name"]: p["containers"][0]["last_termination_reason"] for p in status["state"]["pods"]}
    assert last[pods["OOMKilled"]] == "OOMKilled"
    assert last[pods["CrashLoopBackOff"]] == "Error"
