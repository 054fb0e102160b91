"""`scale` changes the replica count when nothing else owns it, and refuses when an HPA does, unless told to
move the HPA's bounds instead."""

from __future__ import annotations

import json

import pytest

from tests.ops.conftest import Ops, install
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
    assert data["hpa"] == {"name": "auto-inkwell", "min": [2, 5], "max": [4, 5]}
    assert (_hpa(autoscaled)["minReplicas"], _hpa(autoscaled)["maxReplicas"]) == (5, 5)
    status = autoscaled.deployment()["status"]
    assert (status["replicas"], status["readyReplicas"]) == (5, 5)
