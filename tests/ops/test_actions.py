"""The actions layer called as a script would call it, without the CLI, on the real cluster: a rollout that
does not finish in time is rolled back by itself (or left, when asked), rollback restores the revision
before, and scale will not fight an HPA unless told to move its bounds; the decisions behind those need no
cluster at all."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from ops import actions
from ops.kube import Cluster, Connection
from ops.model import Condition, HpaInfo, MetricInfo
from ops.results import (
    AlreadyAt,
    BadOption,
    DryRun,
    HpaChange,
    Refused,
    RollbackResult,
    RolloutResult,
    ScaleResult,
)
from tests.ops.conftest import IMAGE, install
from tests.support.kube import Kube

NEVER_READY = {"inkwell.dev/simulate": "never-ready"}


class Recorder:
    """A Reporter that keeps the lines an operator would read on stderr."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def say(self, message: str) -> None:
        self.lines.append(message)

    def fail(self, message: str) -> None:
        self.lines.append(f"error: {message}")

    @contextmanager
    def progress(self, what: str, total: int) -> Iterator[Callable[[int, int, str], None]]:
        yield lambda done, total, detail: None


def _hpa(minimum: int, maximum: int) -> HpaInfo:
    return HpaInfo(
        name="web", min_replicas=minimum, max_replicas=maximum, current_replicas=0, desired_replicas=0
    )


# --- the decisions, without a cluster --------------------------------------------------------------


def test_a_scale_under_an_hpa_is_refused_unless_its_bounds_may_move() -> None:
    with pytest.raises(Refused, match="horizontalpodautoscaler/web owns the replica count of deployment/app"):
        actions.hpa_change(_hpa(2, 4), "app", 3, adjust_hpa=False)


def test_moving_the_hpa_raises_its_minimum_and_its_maximum_only_when_lower() -> None:
    assert actions.hpa_change(_hpa(2, 4), "app", 3, adjust_hpa=True) == HpaChange("web", (2, 3), (4, 4))
    assert actions.hpa_change(_hpa(2, 4), "app", 6, adjust_hpa=True) == HpaChange("web", (2, 6), (4, 6))
    assert actions.hpa_change(_hpa(2, 4), "app", 1, adjust_hpa=True) == HpaChange("web", (2, 1), (4, 4))


def test_what_the_hpa_chose_is_explained_by_its_bounds_or_its_metrics() -> None:
    assert actions.hpa_choice(_hpa(5, 6), before=2, desired=5) == "raised to its new minimum 5"
    assert actions.hpa_choice(_hpa(1, 3), before=8, desired=3) == "lowered to its new maximum 3"
    blind = HpaInfo(
        name="web", min_replicas=3, max_replicas=10, current_replicas=8, desired_replicas=8,
        conditions=[Condition("ScalingActive", "False", "FailedGetResourceMetric", "no metrics API")],
    )  # fmt: skip
    assert actions.hpa_choice(blind, before=8, desired=8) == (
        "between 3 and 10 its metrics decide, and it cannot read them "
        "(FailedGetResourceMetric: no metrics API), so it keeps 8"
    )
    seeing = HpaInfo(
        name="web", min_replicas=3, max_replicas=10, current_replicas=8, desired_replicas=8,
        metrics=[MetricInfo("resource/cpu", "65%", "70%")],
    )  # fmt: skip
    assert "its metrics decide (resource/cpu 65%/70%)" in actions.hpa_choice(seeing, before=8, desired=8)


def test_an_hpa_cannot_be_moved_to_zero_pods() -> None:
    with pytest.raises(Refused, match="fewer than 1 pod"):
        actions.hpa_change(_hpa(2, 4), "app", 0, adjust_hpa=True)


def test_the_container_is_the_one_named_the_only_one_or_the_services_own() -> None:
    assert actions.choose_container({"app": "a:1"}, None) == "app"
    assert actions.choose_container({"proxy": "p:1", "inkwell": "i:1"}, None) == "inkwell"
    assert actions.choose_container({"proxy": "p:1", "inkwell": "i:1"}, "proxy") == "proxy"
    with pytest.raises(BadOption, match="several containers") as several:
        actions.choose_container({"proxy": "p:1", "shipper": "s:1"}, None)
    assert several.value.option == "--container"
    with pytest.raises(BadOption, match="no container 'x'"):
        actions.choose_container({"inkwell": "i:1"}, "x")


# --- on the cluster --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(kube: Kube) -> Iterator[Cluster]:
    # A progress deadline far beyond the timeouts below: the rollouts here fail by the timeout.
    install(kube, "act", "replicaCount=1", "progressDeadlineSeconds=600")
    install(
        kube, "auto", "autoscaling.enabled=true", "autoscaling.minReplicas=1", "autoscaling.maxReplicas=3"
    )
    connected = Cluster(Connection(kubeconfig=kube.kubeconfig, namespace=kube.namespace))
    yield connected
    connected.close()


def _images(cluster: Cluster) -> dict[str, str]:
    return cluster.reads.deployment("act-inkwell").images


@pytest.mark.slow
def test_a_dry_run_returns_the_diff_and_changes_nothing(cluster: Cluster) -> None:
    generation = cluster.reads.deployment("act-inkwell").generation
    result = actions.rollout(cluster, Recorder(), release="act", image=f"{IMAGE}:0.2.0", dry_run=True)
    assert isinstance(result, DryRun)
    assert (result.action, result.deployment) == ("rollout", "act-inkwell")
    assert f"+    image: {IMAGE}:0.2.0" in result.diff
    assert cluster.reads.deployment("act-inkwell").generation == generation


@pytest.mark.slow
def test_a_good_rollout_settles_at_the_next_revision(cluster: Cluster) -> None:
    out = Recorder()
    result = actions.rollout(cluster, out, release="act", image=f"{IMAGE}:0.2.0", timeout=120)
    assert isinstance(result, RolloutResult)
    assert (result.outcome.ok, result.outcome.reason, result.rolled_back_to) == (True, "Complete", None)
    assert result.outcome.deployment.revision == 2
    assert out.lines[0] == f"deployment/act-inkwell: inkwell {IMAGE}:0.1.0 -> {IMAGE}:0.2.0"
    # The chart rendered 0.1.0: the change is drift until the release's values say 0.2.0 (ops.drift).
    assert out.lines[1:] == [
        f"helm drift: deployment/act-inkwell image {IMAGE}:0.2.0 (Helm's: {IMAGE}:0.1.0); a helm upgrade "
        "of release act is refused until its values agree. To keep this: helm upgrade act charts/inkwell "
        f"-n {cluster.namespace} --reuse-values --set image.tag=0.2.0"
    ]


@pytest.mark.slow
def test_a_rollout_that_does_not_finish_in_time_is_rolled_back_to_the_revision_before(
    cluster: Cluster,
) -> None:
    out = Recorder()
    result = actions.rollout(
        cluster, out, release="act", image=f"{IMAGE}:never-ready", labels=NEVER_READY, timeout=10
    )
    assert isinstance(result, RolloutResult)
    assert (result.outcome.ok, result.outcome.reason) == (False, "Timeout")
    assert (result.rolled_back_to, result.rollback_ok) == (2, True)
    # Revision 3 was the never-ready one; revision 2's template came back as revision 4.
    assert result.outcome.deployment.revision == 4
    assert result.outcome.message.endswith("; rolled back to revision 2 (now revision 4)")
    assert f"error: rollout of {IMAGE}:never-ready failed (Timeout): not done after 10s" in out.lines[1]
    assert out.lines[2] == f"rolling back to revision 2 ({IMAGE}:0.2.0)"
    assert _images(cluster) == {"inkwell": f"{IMAGE}:0.2.0"}


@pytest.mark.slow
def test_without_roll_back_a_failed_rollout_stays_until_rollback_restores_the_one_before(
    cluster: Cluster,
) -> None:
    left = actions.rollout(
        cluster,
        Recorder(),
        release="act",
        image=f"{IMAGE}:never-ready",
        labels=NEVER_READY,
        roll_back=False,
        timeout=3,
    )
    assert isinstance(left, RolloutResult)
    assert (left.outcome.ok, left.outcome.reason, left.rolled_back_to) == (False, "Timeout", None)
    assert _images(cluster) == {"inkwell": f"{IMAGE}:never-ready"}

    restored = actions.rollback(cluster, Recorder(), release="act", timeout=120)
    assert isinstance(restored, RollbackResult)
    assert (restored.restored, restored.outcome.ok) == (4, True)
    assert _images(cluster) == {"inkwell": f"{IMAGE}:0.2.0"}
    current = restored.outcome.deployment.revision
    generation = cluster.reads.deployment("act-inkwell").generation
    again = actions.rollback(cluster, Recorder(), release="act", to_revision=current)
    assert again == AlreadyAt("act-inkwell", current)
    assert cluster.reads.deployment("act-inkwell").generation == generation


@pytest.mark.slow
def test_scale_without_an_hpa_sets_the_replicas_and_waits_for_them(cluster: Cluster) -> None:
    out = Recorder()
    result = actions.scale(cluster, out, release="act", replicas=2, timeout=120)
    assert isinstance(result, ScaleResult)
    assert (result.outcome.ok, result.hpa) == (True, None)
    assert result.outcome.deployment.available == 2
    assert out.lines[0] == "deployment/act-inkwell: replicas 1 -> 2"
    assert out.lines[1].startswith("helm drift: deployment/act-inkwell image")
    assert out.lines[1].endswith("--set image.tag=0.2.0 --set replicaCount=2")


@pytest.mark.slow
def test_scale_under_an_hpa_is_refused_or_moves_its_bounds(cluster: Cluster) -> None:
    with pytest.raises(Refused, match="--adjust-hpa"):
        actions.scale(cluster, Recorder(), release="auto", replicas=2)
    result = actions.scale(cluster, Recorder(), release="auto", replicas=5, adjust_hpa=True, dry_run=True)
    assert result == DryRun(
        "scale", "auto-inkwell", "horizontalpodautoscaler/auto-inkwell: min 1 -> 5, max 3 -> 5"
    )
    hpa = cluster.reads.hpa_for("auto-inkwell")
    assert hpa is not None
    assert (hpa.min_replicas, hpa.max_replicas) == (1, 3)
