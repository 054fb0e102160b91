"""Migrations run as a Job cut from the Deployment's own pod template, so they see exactly the image,
environment, Secrets and security settings the service runs with, without a second copy to drift."""

from __future__ import annotations

import copy
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from ops.kube import INSTANCE, Cluster, KubeError
from ops.model import JobInfo, PodInfo
from ops.results import MigrationResult, Reporter

COMMAND = ["inkwell", "migrate"]
# Only what a long-running server needs; a Job that runs once to completion must not carry them.
SERVER_ONLY = ("livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "ports", "args")


def job_name(deployment: str, at: datetime) -> str:
    # The time says when it ran; the random part keeps two runs in one second apart.
    suffix = f"-migrate-{at.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(2)}"
    return deployment[: 63 - len(suffix)].rstrip("-") + suffix


def build_job(
    template: dict[str, Any],
    *,
    name: str,
    release: str,
    container: str,
    labels: dict[str, str],
    timeout_seconds: int,
) -> dict[str, Any]:
    """A Job manifest from a Deployment's pod template (as the API spells it, camelCase)."""
    spec = copy.deepcopy(template.get("spec", {}))
    (app,) = [c for c in spec["containers"] if c["name"] == container]
    for key in SERVER_ONLY:
        app.pop(key, None)
    app["command"] = list(COMMAND)
    # Sidecars of the service (a proxy, a log shipper) would keep the Job from ever completing.
    spec["containers"] = [app]
    spec["restartPolicy"] = "Never"
    # Spread and anti-affinity rules select the service's pods; they mean nothing for one Job pod.
    spec.pop("topologySpreadConstraints", None)
    affinity = spec.get("affinity") or {}
    affinity.pop("podAntiAffinity", None)
    affinity.pop("podAffinity", None)
    if not affinity:
        spec.pop("affinity", None)
    # Not the template's labels: the selector labels would put the Job's pod behind the Service and
    # under the PodDisruptionBudget; only the instance, so the release's objects are still found.
    pod_labels = {
        INSTANCE: release,
        "app.kubernetes.io/component": "migration",
        "app.kubernetes.io/managed-by": "inkwell-ops",
    } | labels
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "labels": {
                INSTANCE: release,
                "app.kubernetes.io/component": "migration",
                "app.kubernetes.io/managed-by": "inkwell-ops",
            },
        },
        "spec": {
            "backoffLimit": 0,  # a migration that failed once is a person's job, not a retry's
            "activeDeadlineSeconds": timeout_seconds,
            # If the CLI dies before it cleans up, the Job still goes away by itself.
            "ttlSecondsAfterFinished": 3600,
            "template": {"metadata": {"labels": pod_labels}, "spec": spec},
        },
    }


def _explain(job: JobInfo, pods: list[PodInfo]) -> str:
    for pod in reversed(pods):
        for c in pod.containers:
            if c.state == "terminated" and c.exit_code not in (None, 0):
                return f"pod {pod.name} exited with code {c.exit_code} ({c.reason or 'Error'})"
            if c.state == "waiting" and c.reason:
                return f"pod {pod.name} could not start: {c.reason} {c.message}".strip()
        scheduled = pod.condition("PodScheduled")
        if pod.phase == "Pending" and scheduled is not None and scheduled.status == "False":
            return f"pod {pod.name} was never scheduled: {scheduled.message}"
    return f"{job.reason}: {job.message}" if job.reason else "the Job did not complete"


def run(
    cluster: Cluster,
    out: Reporter,
    *,
    deployment: str,
    release: str,
    container: str,
    labels: dict[str, str],
    timeout: int,
    keep: bool = False,
) -> MigrationResult:
    template = cluster.reads.pod_template(deployment)
    name = job_name(deployment, datetime.now(UTC))
    manifest = build_job(
        template, name=name, release=release, container=container, labels=labels, timeout_seconds=timeout
    )
    cluster.jobs.create(manifest)
    out.say(f"job/{name} created from deployment/{deployment} ({' '.join(COMMAND)})")
    # The Job's own activeDeadlineSeconds ends it server-side; the margin lets that verdict arrive.
    deadline = time.monotonic() + timeout + 30
    result = MigrationResult(job=name, succeeded=False, reason="Timeout", message="")
    try:
        with out.progress(f"job/{name}", total=1) as progress:
            while True:
                job = cluster.jobs.read(name)
                pods = cluster.jobs.pods(name)
                phases = ", ".join(f"{p.name.rsplit('-', 1)[-1]} {p.phase}" for p in pods) or "no pod yet"
                progress(job.succeeded, 1, phases)
                if job.done:
                    result.succeeded, result.reason = job.complete, job.reason
                    result.message = "migrated" if job.complete else _explain(job, pods)
                    break
                if time.monotonic() >= deadline:
                    result.message = f"not finished after {timeout}s: " + _explain(job, pods)
                    break
                time.sleep(0.5)
        result.pods = cluster.jobs.pods(name)
        for pod in result.pods:
            try:
                result.logs[pod.name] = cluster.jobs.log(pod.name, container)
            except KubeError as exc:
                result.logs[pod.name] = f"(no log: {exc})"
    finally:
        if not keep:
            result.cleaned_up = cluster.jobs.delete(name)
    return result
