"""Reads a release snapshot the way an experienced operator would: each known failure mode becomes a finding
with one line of advice, and a release with no findings is healthy."""

from __future__ import annotations

from dataclasses import dataclass

from ops import drift
from ops.model import PodInfo, ReleaseState

PULL_ERRORS = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}
CONFIG_ERRORS = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}


@dataclass(frozen=True)
class Finding:
    problem: str  # a short name a script can match on: CrashLoopBackOff, StuckRollout...
    object: str  # kind/name
    detail: str
    advice: str


def _pod_findings(pod: PodInfo, state: ReleaseState, probe_failures: dict[str, str]) -> list[Finding]:
    if pod.deleting or pod.phase in ("Succeeded", "Failed"):
        return []
    where = f"pod/{pod.name}"
    findings = []
    for container in pod.containers:
        if container.reason == "CrashLoopBackOff":
            last = container.last_termination_reason or "exited"
            code = f" with code {container.last_exit_code}" if container.last_exit_code is not None else ""
            findings.append(
                Finding(
                    "CrashLoopBackOff",
                    where,
                    f"container {container.name} keeps crashing ({last}{code}, {container.restarts} restarts)",
                    f"read why it exits: kubectl logs -n {state.namespace} {pod.name} -c {container.name} --previous",
                )
            )
        elif container.reason in PULL_ERRORS:
            findings.append(
                Finding(
                    "ImagePullBackOff",
                    where,
                    f"cannot pull {container.image}: {container.message or container.reason}",
                    "check that the tag exists in the registry and that imagePullSecrets grant access to it",
                )
            )
        elif container.reason in CONFIG_ERRORS:
            findings.append(
                Finding(
                    container.reason,
                    where,
                    f"container {container.name} cannot start: {container.message or container.reason}",
                    "a Secret or ConfigMap the pod refers to is missing a key or does not exist",
                )
            )
        if container.last_termination_reason == "OOMKilled" or container.reason == "OOMKilled":
            findings.append(
                Finding(
                    "OOMKilled",
                    where,
                    f"container {container.name} was killed for exceeding its memory limit "
                    f"({container.restarts} restarts)",
                    "raise resources.limits.memory in the chart values, or find what grew (heap, pool size)",
                )
            )
    scheduled = pod.condition("PodScheduled")
    if pod.phase == "Pending" and scheduled is not None and scheduled.reason == "Unschedulable":
        findings.append(
            Finding(
                "Unschedulable",
                where,
                scheduled.message or "no node can run this pod",
                "lower resources.requests, relax nodeSelector/affinity/tolerations, or add nodes",
            )
        )
    running = pod.phase == "Running" and pod.containers and all(c.state == "running" for c in pod.containers)
    if running and not pod.ready and not findings:
        probe = probe_failures.get(pod.name)
        findings.append(
            Finding(
                "NotReady",
                where,
                f"running but not ready: {probe}"
                if probe
                else "running but its readiness probe does not pass",
                "check /readyz from inside the pod (database reachable? schema migrated: inkwell-ops migrate)",
            )
        )
    return findings


def diagnose(state: ReleaseState) -> list[Finding]:
    findings: list[Finding] = []
    deployment = state.deployment
    where = f"deployment/{deployment.name}"
    progressing = deployment.condition("Progressing")
    if progressing is not None and progressing.reason == "ProgressDeadlineExceeded":
        findings.append(
            Finding(
                "StuckRollout",
                where,
                f"revision {deployment.revision} made no progress in {deployment.progress_deadline_seconds}s: "
                f"{deployment.updated}/{deployment.desired} updated, {deployment.available} available",
                "inkwell-ops rollback to return to the last good revision, then fix the new pods (see below)"
                if len(state.revisions) > 1
                else "no earlier revision to return to: fix the pods (see below), or helm rollback the release",
            )
        )
    elif deployment.paused:
        findings.append(
            Finding(
                "Paused", where, "the Deployment is paused: changes do not roll out", "kubectl rollout resume"
            )
        )
    if deployment.available < deployment.desired:
        findings.append(
            Finding(
                "Unavailable",
                where,
                f"{deployment.available} of {deployment.desired} pods available",
                "the pod findings below say why; a rollout in progress also counts until it is done",
            )
        )
    probe_failures = {
        e.name: e.message for e in state.warnings if e.kind == "Pod" and e.reason == "Unhealthy"
    }
    for pod in state.pods:
        findings.extend(_pod_findings(pod, state, probe_failures))
    for service in state.services:
        if service.ready_endpoints == 0:
            findings.append(
                Finding(
                    "NoReadyEndpoints",
                    f"service/{service.name}",
                    f"no ready endpoints ({service.not_ready_endpoints} not ready): the ingress answers 503",
                    "make at least one pod ready (see the pod findings), or roll back",
                )
            )
    known_services = {s.name for s in state.services}
    for ingress in state.ingresses:
        for missing in sorted(set(ingress.services) - known_services):
            findings.append(
                Finding(
                    "MissingBackend",
                    f"ingress/{ingress.name}",
                    f"routes to Service {missing}, which the release does not have",
                    "fix the Ingress backend name, or reinstall the chart",
                )
            )
    hpa = state.hpa
    if hpa is not None:
        # The Deployment's count is the HPA's decision, and is there before the HPA's first status.
        if max(hpa.current_replicas, deployment.desired) >= hpa.max_replicas:
            findings.append(
                Finding(
                    "HpaAtMax",
                    f"horizontalpodautoscaler/{hpa.name}",
                    f"pinned at its maximum of {hpa.max_replicas} pods: it cannot add capacity",
                    f"raise maxReplicas (inkwell-ops scale N --adjust-hpa, N > {hpa.max_replicas}) "
                    "or find what drives the load",
                )
            )
        active = hpa.condition("ScalingActive")
        if active is not None and active.status == "False":
            findings.append(
                Finding(
                    "HpaMetricsUnavailable",
                    f"horizontalpodautoscaler/{hpa.name}",
                    f"cannot compute a replica count ({active.reason}): {active.message}",
                    "check metrics-server (CPU) and prometheus-adapter (requests per second), see k8s/",
                )
            )
    for pdb in state.pdbs:
        if pdb.expected_pods > 0 and pdb.disruptions_allowed == 0:
            findings.append(
                Finding(
                    "PdbBlocksDrains",
                    f"poddisruptionbudget/{pdb.name}",
                    f"allows no disruption ({pdb.current_healthy} healthy, {pdb.desired_healthy} required): "
                    "node drains will hang",
                    "make the unready pods ready or add replicas before draining; keep maxUnavailable >= 1",
                )
            )
    drifts = drift.find(deployment, hpa)
    if drifts:
        findings.append(
            Finding(
                "HelmDrift",
                drifts[0].object,
                f"changed outside Helm: {drift.describe(drifts)}; a helm upgrade of the release's values "
                "is refused until they agree",
                f"keep it: {drift.helm_command(state.release, state.namespace, drifts)}; "
                "or undo it with inkwell-ops",
            )
        )
    return findings
