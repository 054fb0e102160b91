"""What each inkwell-ops command does, apart from how it was asked and how its answer is shown: given the
adapter and plain arguments, an action reads, decides (roll back a failed rollout, move an HPA's bounds
instead of the replicas), changes, waits, and returns a result from ops.results for the CLI to render."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from ops import diagnose
from ops import migrate as migration
from ops import rollout as rollouts
from ops import slo as slos
from ops.kube import Cluster
from ops.kube import releases as kube_releases
from ops.model import DeployedRelease, HpaInfo
from ops.results import (
    AlreadyAt,
    BadOption,
    DryRun,
    Failed,
    History,
    HpaChange,
    MigrationResult,
    Outcome,
    Refused,
    Reporter,
    RestartResult,
    RollbackResult,
    RolloutResult,
    ScaleResult,
    Status,
)

VERSION = "app.kubernetes.io/version"


def choose_container(images: dict[str, str], chosen: str | None) -> str:
    """The container a command acts on: the one named, the only one, or the service's own."""
    if chosen is not None:
        if chosen not in images:
            raise BadOption("--container", f"no container {chosen!r} (containers: {', '.join(images)})")
        return chosen
    if len(images) == 1:
        return next(iter(images))
    if "inkwell" in images:
        return "inkwell"
    raise BadOption("--container", f"several containers ({', '.join(images)}); name one")


def _template_dry_run(action: str, name: str, before: dict[str, Any], after: dict[str, Any]) -> DryRun:
    return DryRun(action, name, rollouts.diff(before, after, name=f"deployment/{name} pod template"))


# --- reading ---------------------------------------------------------------------------------------


def status(cluster: Cluster, *, release: str) -> Status:
    state = cluster.reads.release_state(release)
    return Status(state, diagnose.diagnose(state))


def history(cluster: Cluster, *, release: str) -> History:
    name = cluster.reads.find_deployment(release)
    return History(name, cluster.reads.revisions(name))


# --- changing --------------------------------------------------------------------------------------


def rollout(
    cluster: Cluster,
    out: Reporter,
    *,
    release: str,
    image: str,
    container: str | None = None,
    labels: dict[str, str] | None = None,
    dry_run: bool = False,
    roll_back: bool = True,
    timeout: float = 600,
) -> RolloutResult | DryRun:
    """Sets the image and waits; a rollout that fails (by its deadline or the timeout) is rolled back to
    the revision that ran before, unless `roll_back` is off."""
    reads, mutations = cluster.reads, cluster.mutations
    name = reads.find_deployment(release)
    before = reads.deployment(name)
    chosen = choose_container(before.images, container)
    labels = dict(labels or {})
    # The chart labels pods with their version; a new image keeps that label true.
    if VERSION in reads.pod_template(name).get("metadata", {}).get("labels", {}):
        labels = {VERSION: rollouts.image_tag(image)} | labels
    old, new = mutations.set_image(name, container=chosen, image=image, labels=labels, dry_run=dry_run)
    if dry_run:
        return _template_dry_run("rollout", name, old, new)
    if old == new:
        out.say(f"deployment/{name} already runs {image}")
    else:
        out.say(f"deployment/{name}: {chosen} {before.images[chosen]} -> {image}")
    outcome = rollouts.wait(reads, name, out, timeout=timeout)
    if outcome.ok or not roll_back:
        return RolloutResult(name, outcome, image)
    out.fail(f"rollout of {image} failed ({outcome.reason}): {outcome.message}")
    target = before.revision
    restored, _, _ = mutations.rollback(name, target)
    out.say(f"rolling back to revision {target} ({', '.join(restored.images.values())})")
    back = rollouts.wait(reads, name, out, timeout=timeout)
    # The restored template becomes a new revision number, as with `kubectl rollout undo`.
    message = (
        f"rolled back to revision {target} (now revision {back.deployment.revision})"
        if back.ok
        else f"rollback failed too: {back.message}"
    )
    reason = outcome.message.rstrip(".")
    failed = Outcome(False, outcome.reason, f"{reason}; {message}", back.deployment)
    return RolloutResult(name, failed, image, rolled_back_to=target, rollback_ok=back.ok)


def rollback(
    cluster: Cluster,
    out: Reporter,
    *,
    release: str,
    to_revision: int | None = None,
    dry_run: bool = False,
    timeout: float = 600,
) -> RollbackResult | AlreadyAt | DryRun:
    """Restores an earlier revision's pod template (by default the one before the current) and waits."""
    reads = cluster.reads
    name = reads.find_deployment(release)
    current = reads.deployment(name).revision
    if to_revision is None:
        previous = rollouts.previous_revision(reads.revisions(name), current)
        if previous is None:
            raise Failed(f"deployment/{name} has no revision before {current}")
        to_revision = previous.revision
    if to_revision == current:
        return AlreadyAt(name, current)
    target, old, new = cluster.mutations.rollback(name, to_revision, dry_run=dry_run)
    if dry_run:
        return _template_dry_run("rollback", name, old, new)
    out.say(
        f"deployment/{name}: revision {current} -> template of revision {to_revision} "
        f"({', '.join(target.images.values())})"
    )
    return RollbackResult(name, rollouts.wait(reads, name, out, timeout=timeout), to_revision)


def restart(
    cluster: Cluster, out: Reporter, *, release: str, dry_run: bool = False, timeout: float = 600
) -> RestartResult | DryRun:
    """Replaces every pod, as `kubectl rollout restart` does, and waits."""
    name = cluster.reads.find_deployment(release)
    at = datetime.now(UTC).replace(microsecond=0)
    old, new = cluster.mutations.restart(name, at, dry_run=dry_run)
    if dry_run:
        return _template_dry_run("restart", name, old, new)
    out.say(f"deployment/{name}: restartedAt {at.isoformat()}")
    return RestartResult(name, rollouts.wait(cluster.reads, name, out, timeout=timeout))


def hpa_change(hpa: HpaInfo, deployment: str, replicas: int, *, adjust_hpa: bool) -> HpaChange:
    """What a scale to `replicas` does to the HPA that owns the Deployment's replica count: refused, since
    the HPA would undo it, unless asked to move the HPA's minimum there (and its maximum, if lower)."""
    if not adjust_hpa:
        raise Refused(
            f"horizontalpodautoscaler/{hpa.name} owns the replica count of deployment/{deployment} "
            f"(min {hpa.min_replicas}, max {hpa.max_replicas}); a scale would be undone. "
            f"Use --adjust-hpa to set its minimum to {replicas}."
        )
    if replicas < 1:
        raise Refused("an HPA cannot keep fewer than 1 pod; scale to 0 needs the HPA removed (helm values)")
    maximum = max(hpa.max_replicas, replicas)
    return HpaChange(hpa.name, (hpa.min_replicas, replicas), (hpa.max_replicas, maximum))


def scale(
    cluster: Cluster,
    out: Reporter,
    *,
    release: str,
    replicas: int,
    adjust_hpa: bool = False,
    dry_run: bool = False,
    timeout: float = 600,
) -> ScaleResult | DryRun:
    """Scales the Deployment and waits, or, where an HPA owns its replica count, moves the HPA's bounds
    (see hpa_change) and waits for the HPA to scale."""
    reads = cluster.reads
    name = reads.find_deployment(release)
    hpa = reads.hpa_for(name)
    if hpa is None:
        before = reads.deployment(name).desired
        cluster.mutations.scale(name, replicas, dry_run=dry_run)
        change = f"deployment/{name}: replicas {before} -> {replicas}"
        if dry_run:
            return DryRun("scale", name, change)
        out.say(change)
        return ScaleResult(name, rollouts.wait(reads, name, out, timeout=timeout), replicas, None)
    bounds = hpa_change(hpa, name, replicas, adjust_hpa=adjust_hpa)
    (old_min, new_min), (old_max, new_max) = bounds.minimum, bounds.maximum
    cluster.mutations.set_hpa_bounds(hpa.name, min_replicas=new_min, max_replicas=new_max, dry_run=dry_run)
    change = f"horizontalpodautoscaler/{hpa.name}: min {old_min} -> {new_min}, max {old_max} -> {new_max}"
    if dry_run:
        return DryRun("scale", name, change)
    out.say(change)
    return ScaleResult(name, _wait_for_hpa(cluster, out, name, new_min, timeout), replicas, bounds)


def _wait_for_hpa(cluster: Cluster, out: Reporter, name: str, minimum: int, timeout: float) -> Outcome:
    """The HPA applies its new minimum on its next sync; then the Deployment rolls like any scale."""
    deadline = time.monotonic() + timeout
    while cluster.reads.deployment(name).desired < minimum:
        if time.monotonic() >= deadline:
            d = cluster.reads.deployment(name)
            return Outcome(False, "Timeout", f"the HPA did not scale to {minimum} in {timeout}s", d)
        time.sleep(0.5)
    return rollouts.wait(cluster.reads, name, out, timeout=max(1, deadline - time.monotonic()))


def migrate(
    cluster: Cluster,
    out: Reporter,
    *,
    release: str,
    container: str | None = None,
    labels: dict[str, str] | None = None,
    timeout: int = 300,
    keep: bool = False,
) -> MigrationResult:
    """Runs `inkwell migrate` as a Job cut from the Deployment's pod template (see ops.migrate)."""
    name = cluster.reads.find_deployment(release)
    chosen = choose_container(cluster.reads.deployment(name).images, container)
    return migration.run(
        cluster,
        out,
        deployment=name,
        release=release,
        container=chosen,
        labels=labels or {},
        timeout=timeout,
        keep=keep,
    )


# --- from outside the cluster ----------------------------------------------------------------------


def slo(prometheus: str, *, namespace: str, release: str, window: str = "30d") -> slos.SloReport:
    """The release's SLOs from the Prometheus at that URL (see ops.slo); PrometheusError when it cannot
    answer."""
    client = slos.Prometheus(prometheus)
    try:
        return slos.measure(client, namespace=namespace, release=release, window=window)
    finally:
        client.close()


# --- listing ---------------------------------------------------------------------------------------


def releases(cluster: Cluster, *, all_namespaces: bool = False) -> list[DeployedRelease]:
    return kube_releases.deployed(cluster.connection, all_namespaces=all_namespaces)
