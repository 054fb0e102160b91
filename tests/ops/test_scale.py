"""`scale` changes the replica count when nothing else owns it, and refuses when an HPA does, unless told to
move the HPA's bounds instead; then it says what the HPA chose, and why, once the HPA has acted."""

from __future__ import annotations

import json

import pytest

from tests.ops.conftest import Ops, eventually, install
from tests.support.kube import Kube

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def plain(kube: Kube) -> Ops:
    install(kube, "plain", "replicaCount=2")
    return Ops(kube, "plain")


@pytest.fixture(scope="module")
def autoscaled(kube: Kube) -> Ops:
    install(
        kube, "auto", "autoscaling.enabled=true", "autoscaling.minReplicas=2", "autoscaling.maxReplicas=4"
    )
    return Ops(kube, "auto")


def _hpa(ops: Ops) -> dict[str, object]:
    return dict(
        json.loads(ops.kube.kubectl("get", "hpa", f"{ops.release}-inkwell", "-o", "json").stdout)["spec"]
    )


def test_scale_without_an_hpa_sets_the_replicas_and_waits_for_them(plain: Ops) -> None:
    code, data = plain.json("scale", "3")
    assert code == 0
    assert (data["ok"], data["replicas"], data["hpa"]) == (True, 3, None)
    status = plain.deployment()["status"]
    assert (status["replicas"], status["readyReplicas"], status["availableReplicas"]) == (3, 3, 3)
    result = plain("scale", "1")
    assert result.exit_code == 0, result.stderr
    assert "replicas 3 -> 1" in result.stderr
    assert plain.deployment()["spec"]["replicas"] == 1


def test_a_scale_dry_run_says_what_would_change_and_changes_nothing(plain: Ops) -> None:
    replicas = plain.deployment()["spec"]["replicas"]
    result = plain("scale", "7", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"deployment/plain-inkwell: replicas {replicas} -> 7"
    assert "server-side dry run" in result.stderr
    assert plain.deployment()["spec"]["replicas"] == replicas


def test_scale_refuses_when_an_hpa_owns_the_replicas(autoscaled: Ops) -> None:
    result = autoscaled("scale", "3")
    assert result.exit_code == 2
    assert "horizontalpodautoscaler/auto-inkwell owns the replica count" in result.stderr
    assert "--adjust-hpa" in result.stderr
    assert autoscaled.deployment()["spec"]["replicas"] == 2
    assert (_hpa(autoscaled)["minReplicas"], _hpa(autoscaled)["maxReplicas"]) == (2, 4)


def test_an_hpa_dry_run_says_what_would_change_and_changes_nothing(autoscaled: Ops) -> None:
    result = autoscaled("scale", "5", "--adjust-hpa", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "horizontalpodautoscaler/auto-inkwell: min 2 -> 5, max 4 -> 5"
    assert (_hpa(autoscaled)["minReplicas"], _hpa(autoscaled)["maxReplicas"]) == (2, 4)


def test_scale_with_adjust_hpa_moves_the_hpa_bounds_and_the_hpa_scales(autoscaled: Ops) -> None:
    code, data = autoscaled.json("scale", "5", "--adjust-hpa")
    assert code == 0
    assert data["hpa"] == {
        "name": "auto-inkwell",
        "min": [2, 5],
        "max": [4, 5],
        "desired": 5,
        "why": "raised to its new minimum 5",
    }
    assert (_hpa(autoscaled)["minReplicas"], _hpa(autoscaled)["maxReplicas"]) == (5, 5)
    status = autoscaled.deployment()["status"]
    assert (status["replicas"], status["readyReplicas"]) == (5, 5)


@pytest.fixture(scope="module")
def busy(kube: Kube) -> Ops:
    """An HPA keeping 4 pods, as one that scaled out under load does (the test cluster has no metrics)."""
    install(
        kube, "busy", "autoscaling.enabled=true", "autoscaling.minReplicas=4", "autoscaling.maxReplicas=6"
    )
    ops = Ops(kube, "busy")
    eventually(lambda: ops.deployment()["status"].get("readyReplicas") == 4, what="4 ready pods")
    return ops


def test_lowering_the_hpa_minimum_says_the_hpa_keeps_its_pods_and_why(busy: Ops) -> None:
    code, data = busy.json("scale", "2", "--adjust-hpa")
    assert code == 0
    hpa = data["hpa"]
    assert (hpa["min"], hpa["max"], hpa["desired"]) == ([4, 2], [6, 6], 4)
    assert "its metrics decide, and it cannot read them" in hpa["why"]
    assert "horizontalpodautoscaler/busy-inkwell keeps 4, not 2" in data["message"]
    # It waited for the HPA to act on the new bounds, not only for the pods already there.
    seen = json.loads(busy.kube.kubectl("get", "hpa", "busy-inkwell", "-o", "json").stdout)
    assert seen["status"]["observedGeneration"] == seen["metadata"]["generation"]
    assert busy.deployment()["spec"]["replicas"] == 4
    result = busy("scale", "2", "--adjust-hpa")
    assert result.exit_code == 0, result.stderr
    assert "horizontalpodautoscaler/busy-inkwell wants 4 pods (there were 4)" in result.stderr
