"""When a Deployment's rollout is done, failed or still going, decided as `kubectl rollout status` decides
it, and waited for with a progress display; shared by rollout, rollback, restart and scale."""

from __future__ import annotations

import difflib
import time

import yaml

from ops.kube import Reads
from ops.model import DeploymentInfo, Revision
from ops.progress import why_not_ready
from ops.results import Outcome, Reporter


def assess(d: DeploymentInfo) -> tuple[bool | None, str, str]:
    """(True: done, False: failed, None: in progress), a reason and a sentence, from one Deployment read."""
    if d.observed_generation < d.generation:
        return None, "Waiting", "waiting for the controller to see the new spec"
    progressing = d.condition("Progressing")
    if progressing is not None and progressing.reason == "ProgressDeadlineExceeded":
        return (
            False,
            "ProgressDeadlineExceeded",
            progressing.message or "the rollout exceeded its progress deadline",
        )
    if d.updated < d.desired:
        return None, "Progressing", f"{d.updated} of {d.desired} new pods updated"
    if d.replicas > d.updated:
        return None, "Progressing", f"{d.replicas - d.updated} old pods pending termination"
    if d.available < d.updated:
        return None, "Progressing", f"{d.available} of {d.updated} updated pods available"
    return True, "Complete", f"{d.available} of {d.desired} pods available at revision {d.revision}"


def wait(
    reads: Reads, name: str, out: Reporter, *, timeout: float, poll: float = 0.5, explain_every: float = 2.0
) -> Outcome:
    """Waits until the rollout is done or failed, or `timeout` seconds. The bar counts the ready pods of
    the current revision's ReplicaSet (the new one) against the desired count and, every `explain_every`
    seconds, the line says why the others are not ready (ops.progress)."""
    deadline = time.monotonic() + timeout
    why, explained = "", float("-inf")
    with out.progress(f"deployment/{name}", total=1) as progress:
        while True:
            d = reads.deployment(name)
            done, reason, message = assess(d)
            total = max(d.desired, 1)
            new = 0
            # Until the controller has seen the new spec, the "current" ReplicaSet is still the old one.
            if d.observed_generation >= d.generation:
                explain = done is None and time.monotonic() - explained >= explain_every
                current = reads.rollout_pods(d, warnings=explain)
                new = sum(p.ready and not p.deleting for p in current.pods)
                if explain:
                    why, explained = why_not_ready(current.pods, current.warnings), time.monotonic()
            detail = f"{new} of {d.desired} new pods ready"
            if d.replicas > d.updated:
                detail += f", {d.replicas - d.updated} old"
            detail += f": {message}"
            if done is None and why:
                detail += f"; {why}"
            # Only a finished rollout fills the bar: rich stops a full task's clock and spinner for good.
            progress(total if done else min(new, total - 1), total, detail)
            if done is not None:
                return Outcome(done, reason, message, d)
            if time.monotonic() >= deadline:
                suffix = f" ({why})" if why else ""
                return Outcome(False, "Timeout", f"not done after {timeout:g}s: {message}{suffix}", d)
            time.sleep(poll)


def previous_revision(revisions: list[Revision], current: int) -> Revision | None:
    """The last good revision before the current one: one whose rollout failed, or that was rolled back
    from, is skipped (after an automatic rollback the revision just before the current is the bad one)."""
    older = [r for r in revisions if r.revision < current and r.good]
    return older[-1] if older else None


def diff(before: object, after: object, *, name: str) -> str:
    """A unified diff of two objects as YAML, what `kubectl diff` shows."""
    return "".join(
        difflib.unified_diff(
            yaml.safe_dump(before, sort_keys=True).splitlines(keepends=True),
            yaml.safe_dump(after, sort_keys=True).splitlines(keepends=True),
            fromfile=f"{name} (live)",
            tofile=f"{name} (after)",
        )
    )


def image_tag(image: str) -> str:
    """The tag of an image reference (`latest` when it names none), for the version label."""
    reference = image.split("@", 1)[0]
    name, _, tag = reference.rpartition(":")
    return tag if name and "/" not in tag else "latest"
