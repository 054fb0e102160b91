"""What a wait for a rollout shows while it waits: the new ReplicaSet's pods counted against the desired
count (never the old ReplicaSet's, which would read as done before anything happened), and why the new
pods are not ready yet, in the words the cluster uses: the scheduler's reason for a pending pod, a
container's waiting reason, the kubelet's last warning (a failed readiness probe), the Ready condition."""

from __future__ import annotations

from collections import Counter

from ops.model import EventInfo, PodInfo


def pod_reason(pod: PodInfo, warnings: list[EventInfo]) -> str:
    """Why one pod is not ready, or "" when it is."""
    if pod.ready:
        return ""
    if pod.deleting:
        return "terminating"
    scheduled = pod.condition("PodScheduled")
    if pod.phase == "Pending" and (scheduled is None or scheduled.status != "True"):
        if scheduled is None:
            return "pending: not scheduled yet"
        return f"pending: {scheduled.reason or 'not scheduled'}" + (
            f": {scheduled.message}" if scheduled.message else ""
        )
    for container in pod.containers:
        if container.state == "waiting" and container.reason:
            message = f": {container.message}" if container.message else ""
            return f"container {container.name} waiting: {container.reason}{message}"
        if container.state == "terminated":
            return f"container {container.name} exited with code {container.exit_code} ({container.reason})"
    # The kubelet's events say what the probe got (Unhealthy: Readiness probe failed: ... 503).
    mine = [e for e in warnings if e.kind == "Pod" and e.name == pod.name]
    if mine:
        latest = mine[-1]
        return f"{latest.reason}: {latest.message}"
    ready = pod.condition("Ready")
    if pod.phase == "Running" and ready is not None and ready.status != "True":
        detail = f" ({ready.reason})" if ready.reason else ""
        return f"running, readiness probe not passing{detail}"
    return pod.phase.lower()


def why_not_ready(pods: list[PodInfo], warnings: list[EventInfo]) -> str:
    """The reasons of the pods that are not ready, the commonest first, each with how many pods it holds
    back: one line, so it fits beside the progress bar and in a log."""
    reasons = Counter(reason for pod in pods if (reason := pod_reason(pod, warnings)))
    return "; ".join(
        f"{count} {'pod' if count == 1 else 'pods'} {reason}" for reason, count in reasons.most_common()
    )
