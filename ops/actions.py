"""What each inkwell-ops command does, apart from how it was asked and how its answer is shown: given the
adapter and plain arguments, an action reads, decides (roll back a failed rollout, move an HPA's bounds
instead of the replicas), changes, waits, and returns a result from ops.results for the CLI to render."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from ops import diagnose, drift
from ops import migrate as migration
from ops import rollout as rollouts
from ops import slo as slos
from ops.kube import Cluster, KubeError
from ops.kube import releases as kube_releases
from ops.kube.convert import CURRENT_SINCE, OUTCOME, OUTCOME_REASON, ROLLED_BACK_AT
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


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _mark(cluster: Cluster, out: Reporter, replicaset: str, marks: dict[str, str | None]) -> None:
    """Records on a ReplicaSet what happened to its revision. The change itself is done by then, so a
    record that cannot be written (a Role without `patch replicasets`) is said, not fatal."""
    try:
        cluster.mutations.mark_revision(replicaset, marks)
    except KubeError as exc:
        out.fail(f"could not record the outcome on the revision ({exc}); `rollback` may pick it")


def _record(cluster: Cluster, out: Reporter, name: str, outcome: Outcome, since: datetime | None) -> None:
    """Records how the wait for the current revision ended and, when the command switched the Deployment to
    it, since when it is current; a revision that became current again is no longer a rolled-back one."""
    d = outcome.deployment
    if d.observed_generation < d.generation:
        return  # the controller never got to the new revision: nothing of it to record
    revision = next((r for r in cluster.reads.revisions(name) if r.revision == d.revision), None)
    if revision is None:
        return
    marks: dict[str, str | None] = {
        OUTCOME: "complete" if outcome.ok else "failed",
        OUTCOME_REASON: None if outcome.ok else outcome.reason,
    }
    if since is not None:
        marks |= {CURRENT_SINCE: since.isoformat(), ROLLED_BACK_AT: None}
    _mark(cluster, out, revision.replicaset, marks)


def _say_drift(cluster: Cluster, out: Reporter, release: str, name: str, outcome: Outcome) -> None:
    """After a change that worked: where the release now differs from its Helm values, and the upgrade
    that records it (ops.drift), since the chart refuses upgrades that would put Helm's old values back.
    A change that failed is not one to write into the values (`diagnose` still reports the drift)."""
    if not outcome.ok:
        return
    drifts = drift.find(cluster.reads.deployment(name), cluster.reads.hpa_for(name))
    if drifts:
        out.say(
            f"helm drift: {drift.describe(drifts)}; a helm upgrade of release {release} is refused until its "
            f"values agree. To keep this: {drift.helm_command(release, cluster.namespace, drifts)}"
        )


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
    at = _now()
    old, new = mutations.set_image(name, container=chosen, image=image, labels=labels, dry_run=dry_run)
    if dry_run:
        return _template_dry_run("rollout", name, old, new)
    if old == new:
        out.say(f"deployment/{name} already runs {image}")
    else:
        out.say(f"deployment/{name}: {chosen} {before.images[chosen]} -> {image}")
    outcome = rollouts.wait(reads, name, out, timeout=timeout)
    _record(cluster, out, name, outcome, None if old == new else at)
    if outcome.ok or not roll_back:
        _say_drift(cluster, out, release, name, outcome)
        return RolloutResult(name, outcome, image)
    out.fail(f"rollout of {image} failed ({outcome.reason}): {outcome.message}")
    target = before.revision
    at = _now()
    restored, _, _ = mutations.rollback(name, target)
    failed_revision = outcome.deployment
    if failed_revision.observed_generation >= failed_revision.generation:
        bad = next((r for r in reads.revisions(name) if r.revision == failed_revision.revision), None)
        if bad is not None and bad.revision != target:
            _mark(cluster, out, bad.replicaset, {ROLLED_BACK_AT: at.isoformat()})
    out.say(f"rolling back to revision {target} ({', '.join(restored.images.values())})")
    back = rollouts.wait(reads, name, out, timeout=timeout)
    _record(cluster, out, name, back, at)
    _say_drift(cluster, out, release, name, back)
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
    revisions = reads.revisions(name)
    if to_revision is None:
        previous = rollouts.previous_revision(revisions, current)
        if previous is None:
            skipped = [str(r.revision) for r in revisions if r.revision < current and not r.good]
            why = f" (skipped, failed or rolled back: {', '.join(skipped)})" if skipped else ""
            raise Failed(
                f"deployment/{name} has no good revision before {current}{why}; "
                "name one with --to-revision (see `history`)"
            )
        to_revision = previous.revision
    if to_revision == current:
        return AlreadyAt(name, current)
    at = _now()
    target, old, new = cluster.mutations.rollback(name, to_revision, dry_run=dry_run)
    if dry_run:
        return _template_dry_run("rollback", name, old, new)
    left = next((r for r in revisions if r.revision == current), None)
    if left is not None:
        _mark(cluster, out, left.replicaset, {ROLLED_BACK_AT: at.isoformat()})
    out.say(
        f"deployment/{name}: revision {current} -> template of revision {to_revision} "
        f"({', '.join(target.images.values())})"
    )
    outcome = rollouts.wait(reads, name, out, timeout=timeout)
    _record(cluster, out, name, outcome, at)
    _say_drift(cluster, out, release, name, outcome)
    return RollbackResult(name, outcome, to_revision)


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
    outcome = rollouts.wait(cluster.reads, name, out, timeout=timeout)
    _record(cluster, out, name, outcome, at)
    return RestartResult(name, outcome)


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
        outcome = rollouts.wait(reads, name, out, timeout=timeout)
        _say_drift(cluster, out, release, name, outcome)
        return ScaleResult(name, outcome, replicas, None)
    bounds = hpa_change(hpa, name, replicas, adjust_hpa=adjust_hpa)
    (old_min, new_min), (old_max, new_max) = bounds.minimum, bounds.maximum
    before = reads.deployment(name).desired
    cluster.mutations.set_hpa_bounds(hpa.name, min_replicas=new_min, max_replicas=new_max, dry_run=dry_run)
    change = f"horizontalpodautoscaler/{hpa.name}: min {old_min} -> {new_min}, max {old_max} -> {new_max}"
    if dry_run:
        return DryRun("scale", name, change)
    out.say(change)
    result = _follow_hpa(cluster, out, name, bounds, replicas=replicas, before=before, timeout=timeout)
    _say_drift(cluster, out, release, name, result.outcome)
    return result


def hpa_choice(hpa: HpaInfo, before: int, desired: int) -> str:
    """Why the HPA, within its new bounds, wants `desired` pods where there were `before`."""
    if desired == hpa.min_replicas and desired > before:
        return f"raised to its new minimum {desired}"
    if desired == hpa.max_replicas and desired < before:
        return f"lowered to its new maximum {desired}"
    active = hpa.condition("ScalingActive")
    if active is not None and active.status == "False":
        return (
            f"between {hpa.min_replicas} and {hpa.max_replicas} its metrics decide, and it cannot read them "
            f"({active.reason}: {active.message}), so it keeps {desired}"
        )
    metrics = "; ".join(f"{m.name} {m.current}/{m.target}" for m in hpa.metrics) or "no metrics"
    return (
        f"between {hpa.min_replicas} and {hpa.max_replicas} its metrics decide ({metrics}); it scales down "
        "only after its scale-down stabilization window"
        if desired > hpa.min_replicas
        else f"its metrics ({metrics}) ask for no more"
    )


def _follow_hpa(
    cluster: Cluster,
    out: Reporter,
    name: str,
    bounds: HpaChange,
    *,
    replicas: int,
    before: int,
    timeout: float,
) -> ScaleResult:
    """The HPA, not the CLI, sets the replica count: waits until its controller has acted on the new
    bounds (its observedGeneration), says what it chose and why, and then waits for the Deployment to get
    there. A new minimum below the pods running scales nothing down by itself: the metrics decide."""
    reads, deadline = cluster.reads, time.monotonic() + timeout
    generation, observed = reads.hpa_generations(bounds.name)
    while observed is not None and observed < generation:
        if time.monotonic() >= deadline:
            message = f"horizontalpodautoscaler/{bounds.name} did not act on its new bounds in {timeout:g}s"
            return ScaleResult(
                name, Outcome(False, "Timeout", message, reads.deployment(name)), replicas, bounds
            )
        time.sleep(0.5)
        generation, observed = reads.hpa_generations(bounds.name)
    hpa = reads.hpa(bounds.name)
    if observed is None:
        # A cluster that does not report what the HPA has seen: what its bounds make of the pods running.
        desired = min(max(before, hpa.min_replicas), hpa.max_replicas)
    else:
        desired = hpa.desired_replicas or before
    why = hpa_choice(hpa, before, desired)
    chosen = HpaChange(bounds.name, bounds.minimum, bounds.maximum, desired, why)
    out.say(f"horizontalpodautoscaler/{hpa.name} wants {desired} pods (there were {before}): {why}")
    while reads.deployment(name).desired != desired:
        if time.monotonic() >= deadline:
            d = reads.deployment(name)
            message = f"the HPA did not scale deployment/{name} to {desired} in {timeout:g}s (at {d.desired})"
            return ScaleResult(name, Outcome(False, "Timeout", message, d), replicas, chosen)
        time.sleep(0.5)
    outcome = rollouts.wait(reads, name, out, timeout=max(1, deadline - time.monotonic()))
    if desired != replicas:
        message = (
            f"{outcome.message}; horizontalpodautoscaler/{hpa.name} keeps {desired}, not {replicas}: {why}"
        )
        outcome = Outcome(outcome.ok, outcome.reason, message, outcome.deployment)
    return ScaleResult(name, outcome, replicas, chosen)


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
