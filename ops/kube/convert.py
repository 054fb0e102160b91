"""The API server's JSON (camelCase, RFC 3339 times) turned into the plain dataclasses of ops.model, in one
place, so the clients beside it deal only in calls and nothing past the adapter sees an API document."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

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

Doc = Mapping[str, Any]

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


def time(value: Any) -> datetime | None:
    """An RFC 3339 time (2026-12-01T23:04:05Z, or with microseconds), aware; None if absent or unreadable."""
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


def _doc(value: Any) -> Doc:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def metadata(obj: Doc) -> Doc:
    return _doc(obj.get("metadata"))


def name_of(obj: Doc) -> str:
    return str(metadata(obj).get("name") or "")


def labels_of(obj: Doc) -> dict[str, str]:
    return dict(metadata(obj).get("labels") or {})


def annotations_of(obj: Doc) -> dict[str, str]:
    return dict(metadata(obj).get("annotations") or {})


def conditions(items: list[Doc] | None) -> list[Condition]:
    return [
        Condition(
            type=str(c.get("type") or ""),
            status=str(c.get("status") or ""),
            reason=c.get("reason") or "",
            message=c.get("message") or "",
            since=time(c.get("lastTransitionTime")),
        )
        for c in items or []
    ]


def helm_stamp(annotations: Mapping[str, str] | None) -> dict[str, str]:
    """The chart's record of what it rendered (charts/inkwell/templates/_drift.tpl), by field name."""
    return {
        key.removeprefix(HELM_STAMP): value
        for key, value in (annotations or {}).items()
        if key.startswith(HELM_STAMP)
    }


def revision_number(annotations: Mapping[str, str] | None) -> int:
    try:
        return int((annotations or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def images(template: Doc | None) -> dict[str, str]:
    spec = _doc((template or {}).get("spec"))
    return {str(c.get("name")): c.get("image") or "" for c in spec.get("containers") or []}


def match_labels(obj: Doc) -> dict[str, str]:
    """A Deployment's (or ReplicaSet's) selector's matchLabels."""
    return dict(_doc(_doc(obj.get("spec")).get("selector")).get("matchLabels") or {})


def deployment(deployment: Doc, *, namespace: str) -> DeploymentInfo:
    meta, spec, status = metadata(deployment), _doc(deployment.get("spec")), _doc(deployment.get("status"))
    replicas = spec.get("replicas")
    return DeploymentInfo(
        name=str(meta.get("name") or ""),
        namespace=str(meta.get("namespace") or namespace),
        revision=revision_number(meta.get("annotations")),
        images=images(_doc(spec.get("template"))),
        desired=replicas if isinstance(replicas, int) else 1,
        replicas=_int(status.get("replicas")),
        updated=_int(status.get("updatedReplicas")),
        ready=_int(status.get("readyReplicas")),
        available=_int(status.get("availableReplicas")),
        generation=_int(meta.get("generation")),
        observed_generation=_int(status.get("observedGeneration")),
        paused=bool(spec.get("paused")),
        progress_deadline_seconds=spec.get("progressDeadlineSeconds"),
        selector=match_labels(deployment),
        conditions=conditions(status.get("conditions")),
        helm_stamp=helm_stamp(meta.get("annotations")),
    )


def revision(rs: Doc, *, current: int) -> Revision:
    meta, status = metadata(rs), _doc(rs.get("status"))
    found = annotations_of(rs)
    number = revision_number(found)
    return Revision(
        revision=number,
        replicaset=str(meta.get("name") or ""),
        images=images(_doc(_doc(rs.get("spec")).get("template"))),
        created=time(meta.get("creationTimestamp")),
        replicas=_int(status.get("replicas")),
        ready=_int(status.get("readyReplicas")),
        current=number == current,
        change_cause=found.get(CHANGE_CAUSE, ""),
        template_hash=labels_of(rs).get(TEMPLATE_HASH, ""),
        outcome=found.get(OUTCOME, ""),
        outcome_reason=found.get(OUTCOME_REASON, ""),
        current_since=time(found.get(CURRENT_SINCE)),
        rolled_back_at=time(found.get(ROLLED_BACK_AT)),
    )


def _container(status: Doc) -> ContainerInfo:
    state, reason, message, exit_code = "unknown", "", "", None
    now = _doc(status.get("state"))
    if now.get("running") is not None:
        state = "running"
    elif now.get("waiting") is not None:
        waiting = _doc(now["waiting"])
        state, reason, message = "waiting", waiting.get("reason") or "", waiting.get("message") or ""
    elif now.get("terminated") is not None:
        terminated = _doc(now["terminated"])
        state, reason, exit_code = "terminated", terminated.get("reason") or "", terminated.get("exitCode")
        message = terminated.get("message") or ""
    last = _doc(status.get("lastState")).get("terminated")
    return ContainerInfo(
        name=str(status.get("name") or ""),
        image=status.get("image") or "",
        ready=bool(status.get("ready")),
        restarts=_int(status.get("restartCount")),
        state=state,
        reason=reason,
        message=message,
        exit_code=exit_code,
        last_termination_reason=(_doc(last).get("reason") or "") if last is not None else "",
        last_exit_code=_doc(last).get("exitCode") if last is not None else None,
    )


def pod(pod: Doc) -> PodInfo:
    meta, status = metadata(pod), _doc(pod.get("status"))
    containers = [_container(c) for c in status.get("containerStatuses") or []]
    found = conditions(status.get("conditions"))
    ready = any(c.type == "Ready" and c.status == "True" for c in found)
    return PodInfo(
        name=str(meta.get("name") or ""),
        phase=status.get("phase") or "Unknown",
        ready=ready,
        restarts=sum(c.restarts for c in containers),
        created=time(meta.get("creationTimestamp")),
        node=_doc(pod.get("spec")).get("nodeName") or "",
        template_hash=labels_of(pod).get(TEMPLATE_HASH, ""),
        deleting=bool(meta.get("deletionTimestamp")),
        containers=containers,
        conditions=found,
    )


def _metric_value(target: Any) -> str:
    """`70%` for a utilisation, the quantity otherwise; for a MetricTarget or a MetricValueStatus."""
    if not isinstance(target, Mapping):
        return "<unknown>"
    if target.get("averageUtilization") is not None:
        return f"{target['averageUtilization']}%"
    for key in ("averageValue", "value"):
        if target.get(key) is not None:
            return str(target[key])
    return "<unknown>"


def _source(metric: Doc) -> Doc | None:
    """The part of a MetricSpec or MetricStatus its `type` names (Resource -> .resource...)."""
    kind = str(metric.get("type") or "")
    source = metric.get(kind[:1].lower() + kind[1:]) if kind else None
    return source if isinstance(source, Mapping) else None


def _metric_name(spec: Doc) -> str:
    kind = str(spec.get("type") or "")
    source = _source(spec)
    if source is None:
        return kind or "?"
    if source.get("name"):  # Resource, ContainerResource
        return f"{kind.lower()}/{source['name']}"
    metric = source.get("metric")
    return f"{kind.lower()}/{_doc(metric).get('name')}" if metric is not None else kind.lower()


def hpa(hpa: Doc) -> HpaInfo:
    spec, status = _doc(hpa.get("spec")), _doc(hpa.get("status"))
    current = {}
    for observed in status.get("currentMetrics") or []:
        # The controller reports `{type: ""}` for a metric it could not read.
        if observed.get("type"):
            current[_metric_name(observed)] = _metric_value(_doc(_source(observed)).get("current"))
    metrics = []
    for metric in spec.get("metrics") or []:
        metric_name = _metric_name(metric)
        metrics.append(
            MetricInfo(
                name=metric_name,
                current=current.get(metric_name, "<unknown>"),
                target=_metric_value(_doc(_source(metric)).get("target")),
            )
        )
    return HpaInfo(
        name=name_of(hpa),
        min_replicas=spec.get("minReplicas") or 1,
        max_replicas=_int(spec.get("maxReplicas")),
        current_replicas=_int(status.get("currentReplicas")),
        desired_replicas=_int(status.get("desiredReplicas")),
        metrics=metrics,
        conditions=conditions(status.get("conditions")),
        helm_stamp=helm_stamp(annotations_of(hpa)),
    )


def pdb(pdb: Doc) -> PdbInfo:
    status = _doc(pdb.get("status"))
    return PdbInfo(
        name=name_of(pdb),
        disruptions_allowed=_int(status.get("disruptionsAllowed")),
        current_healthy=_int(status.get("currentHealthy")),
        desired_healthy=_int(status.get("desiredHealthy")),
        expected_pods=_int(status.get("expectedPods")),
    )


def ingress(ingress: Doc) -> IngressInfo:
    spec = _doc(ingress.get("spec"))
    hosts: list[str] = []
    services: set[str] = set()
    default = _doc(_doc(spec.get("defaultBackend")).get("service"))
    if default.get("name"):
        services.add(str(default["name"]))
    for rule in spec.get("rules") or []:
        if rule.get("host"):
            hosts.append(str(rule["host"]))
        for path in _doc(rule.get("http")).get("paths") or []:
            service = _doc(_doc(path.get("backend")).get("service"))
            if service.get("name"):
                services.add(str(service["name"]))
    return IngressInfo(name=name_of(ingress), hosts=hosts, services=sorted(services))


def job(job: Doc) -> JobInfo:
    status = _doc(job.get("status"))
    found = conditions(status.get("conditions"))
    # Complete and Failed are the final word; SuccessCriteriaMet and FailureTarget come before them.
    final = next((c for c in found if c.type in ("Complete", "Failed") and c.status == "True"), None)
    return JobInfo(
        name=name_of(job),
        active=_int(status.get("active")),
        succeeded=_int(status.get("succeeded")),
        failed=_int(status.get("failed")),
        done=final is not None,
        complete=final is not None and final.type == "Complete",
        reason=final.reason if final else "",
        message=final.message if final else "",
    )
