"""The Kubernetes client's objects turned into the plain dataclasses of ops.model, in one place, so the
clients beside it deal only in calls and nothing past the adapter sees an API object."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubernetes import client

from ops.model import (
    Condition,
    ContainerInfo,
    DeploymentInfo,
    HpaInfo,
    IngressInfo,
    JobInfo,
    MetricInfo,
    PdbInfo,
    PodInfo,
    Revision,
)

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
TEMPLATE_HASH = "pod-template-hash"
# What inkwell-ops records on a ReplicaSet after waiting for it, so that `history` and `rollback` know which
# revisions failed and which were rolled back after the process that saw it has gone (the Deployment
# controller copies its own annotations to the ReplicaSets and leaves others alone).
OUTCOME = "inkwell.dev/outcome"  # complete or failed
OUTCOME_REASON = "inkwell.dev/outcome-reason"  # ProgressDeadlineExceeded, Timeout
CURRENT_SINCE = "inkwell.dev/current-since"  # when the Deployment last switched to this template
ROLLED_BACK_AT = "inkwell.dev/rolled-back-at"
HELM_STAMP = "inkwell.dev/helm-"  # image, replicas, min-replicas, max-replicas


def conditions(items: list[Any] | None) -> list[Condition]:
    return [
        Condition(
            type=c.type,
            status=c.status,
            reason=c.reason or "",
            message=c.message or "",
            since=getattr(c, "last_transition_time", None),
        )
        for c in items or []
    ]


def helm_stamp(annotations: dict[str, str] | None) -> dict[str, str]:
    """The chart's record of what it rendered (charts/inkwell/templates/_drift.tpl), by field name."""
    return {
        key.removeprefix(HELM_STAMP): value
        for key, value in (annotations or {}).items()
        if key.startswith(HELM_STAMP)
    }


def revision_number(annotations: dict[str, str] | None) -> int:
    try:
        return int((annotations or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def images(template: client.V1PodTemplateSpec | None) -> dict[str, str]:
    if template is None or template.spec is None:
        return {}
    return {c.name: c.image or "" for c in template.spec.containers}


def deployment(deployment: client.V1Deployment, *, namespace: str) -> DeploymentInfo:
    meta, spec, status = deployment.metadata, deployment.spec, deployment.status
    assert meta is not None
    assert spec is not None
    return DeploymentInfo(
        name=meta.name or "",
        namespace=meta.namespace or namespace,
        revision=revision_number(meta.annotations),
        images=images(spec.template),
        desired=spec.replicas if spec.replicas is not None else 1,
        replicas=(status.replicas if status else None) or 0,
        updated=(status.updated_replicas if status else None) or 0,
        ready=(status.ready_replicas if status else None) or 0,
        available=(status.available_replicas if status else None) or 0,
        generation=meta.generation or 0,
        observed_generation=(status.observed_generation if status else None) or 0,
        paused=bool(spec.paused),
        progress_deadline_seconds=spec.progress_deadline_seconds,
        selector=dict(spec.selector.match_labels or {}),
        conditions=conditions(status.conditions if status else None),
        helm_stamp=helm_stamp(meta.annotations),
    )


def _time(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def revision(rs: client.V1ReplicaSet, *, current: int) -> Revision:
    meta = rs.metadata
    assert meta is not None
    assert rs.spec is not None
    number = revision_number(meta.annotations)
    annotations = meta.annotations or {}
    return Revision(
        revision=number,
        replicaset=meta.name or "",
        images=images(rs.spec.template),
        created=meta.creation_timestamp,
        replicas=(rs.status.replicas if rs.status else None) or 0,
        ready=(rs.status.ready_replicas if rs.status else None) or 0,
        current=number == current,
        change_cause=annotations.get(CHANGE_CAUSE, ""),
        template_hash=(meta.labels or {}).get(TEMPLATE_HASH, ""),
        outcome=annotations.get(OUTCOME, ""),
        outcome_reason=annotations.get(OUTCOME_REASON, ""),
        current_since=_time(annotations.get(CURRENT_SINCE)),
        rolled_back_at=_time(annotations.get(ROLLED_BACK_AT)),
    )


def _container(status: client.V1ContainerStatus) -> ContainerInfo:
    state, reason, message, exit_code = "unknown", "", "", None
    if status.state is not None:
        if status.state.running is not None:
            state = "running"
        elif status.state.waiting is not None:
            state, reason = "waiting", status.state.waiting.reason or ""
            message = status.state.waiting.message or ""
        elif status.state.terminated is not None:
            terminated = status.state.terminated
            state, reason, exit_code = "terminated", terminated.reason or "", terminated.exit_code
            message = terminated.message or ""
    last = status.last_state.terminated if status.last_state is not None else None
    return ContainerInfo(
        name=status.name,
        image=status.image or "",
        ready=bool(status.ready),
        restarts=status.restart_count or 0,
        state=state,
        reason=reason,
        message=message,
        exit_code=exit_code,
        last_termination_reason=(last.reason or "") if last is not None else "",
        last_exit_code=last.exit_code if last is not None else None,
    )


def pod(pod: client.V1Pod) -> PodInfo:
    meta, status = pod.metadata, pod.status
    containers = [_container(c) for c in (status.container_statuses or [])] if status else []
    found = conditions(status.conditions if status else None)
    ready = any(c.type == "Ready" and c.status == "True" for c in found)
    return PodInfo(
        name=meta.name if meta and meta.name else "",
        phase=(status.phase if status else None) or "Unknown",
        ready=ready,
        restarts=sum(c.restarts for c in containers),
        created=meta.creation_timestamp if meta else None,
        node=(pod.spec.node_name if pod.spec else None) or "",
        template_hash=((meta.labels or {}) if meta else {}).get(TEMPLATE_HASH, ""),
        deleting=bool(meta and meta.deletion_timestamp),
        containers=containers,
        conditions=found,
    )


def _quantity(value: Any) -> str:
    return "" if value is None else str(value)


def _metric_value(target: Any) -> str:
    """`70%` for a utilisation, the quantity otherwise; for a MetricTarget or a MetricValueStatus."""
    if target is None:
        return "<unknown>"
    if getattr(target, "average_utilization", None) is not None:
        return f"{target.average_utilization}%"
    for attribute in ("average_value", "value"):
        if getattr(target, attribute, None) is not None:
            return _quantity(getattr(target, attribute))
    return "<unknown>"


def _source(metric: Any) -> Any:
    """The part of a MetricSpec or MetricStatus its `type` names (Resource -> .resource...)."""
    kind = metric.type or ""
    return getattr(metric, kind[:1].lower() + kind[1:], None) if kind else None


def _metric_name(spec: Any) -> str:
    source = _source(spec)
    if source is None:
        return spec.type or "?"
    if getattr(source, "name", None):  # Resource, ContainerResource
        return f"{spec.type.lower()}/{source.name}"
    metric = getattr(source, "metric", None)
    return f"{spec.type.lower()}/{metric.name}" if metric is not None else spec.type.lower()


def hpa(hpa: client.V2HorizontalPodAutoscaler) -> HpaInfo:
    spec, status = hpa.spec, hpa.status
    assert spec is not None
    current = {}
    for observed in (status.current_metrics if status else None) or []:
        # The controller reports `{type: ""}` for a metric it could not read.
        if observed.type:
            current[_metric_name(observed)] = _metric_value(getattr(_source(observed), "current", None))
    metrics = []
    for metric in spec.metrics or []:
        source = _source(metric)
        name = _metric_name(metric)
        metrics.append(
            MetricInfo(
                name=name,
                current=current.get(name, "<unknown>"),
                target=_metric_value(getattr(source, "target", None)),
            )
        )
    return HpaInfo(
        name=hpa.metadata.name if hpa.metadata and hpa.metadata.name else "",
        min_replicas=spec.min_replicas or 1,
        max_replicas=spec.max_replicas,
        current_replicas=(status.current_replicas if status else None) or 0,
        desired_replicas=(status.desired_replicas if status else None) or 0,
        metrics=metrics,
        conditions=conditions(status.conditions if status else None),
        helm_stamp=helm_stamp(hpa.metadata.annotations if hpa.metadata else None),
    )


def pdb(pdb: client.V1PodDisruptionBudget) -> PdbInfo:
    assert pdb.metadata is not None
    assert pdb.status is not None
    return PdbInfo(
        name=pdb.metadata.name or "",
        disruptions_allowed=pdb.status.disruptions_allowed or 0,
        current_healthy=pdb.status.current_healthy or 0,
        desired_healthy=pdb.status.desired_healthy or 0,
        expected_pods=pdb.status.expected_pods or 0,
    )


def ingress(ingress: client.V1Ingress) -> IngressInfo:
    spec = ingress.spec
    hosts: list[str] = []
    services: set[str] = set()
    if spec is not None:
        if spec.default_backend and spec.default_backend.service:
            services.add(spec.default_backend.service.name)
        for rule in spec.rules or []:
            if rule.host:
                hosts.append(rule.host)
            for path in rule.http.paths if rule.http else []:
                if path.backend.service:
                    services.add(path.backend.service.name)
    name = ingress.metadata.name if ingress.metadata and ingress.metadata.name else ""
    return IngressInfo(name=name, hosts=hosts, services=sorted(services))


def job(job: client.V1Job) -> JobInfo:
    assert job.metadata is not None
    status = job.status
    found = conditions(status.conditions if status else None)
    # Complete and Failed are the final word; SuccessCriteriaMet and FailureTarget come before them.
    final = next((c for c in found if c.type in ("Complete", "Failed") and c.status == "True"), None)
    return JobInfo(
        name=job.metadata.name or "",
        active=(status.active if status else None) or 0,
        succeeded=(status.succeeded if status else None) or 0,
        failed=(status.failed if status else None) or 0,
        done=final is not None,
        complete=final is not None and final.type == "Complete",
        reason=final.reason if final else "",
        message=final.message if final else "",
    )
