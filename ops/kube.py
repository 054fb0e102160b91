"""The one module that talks to the Kubernetes API, so every call the CLI makes (and every verb its Role
must grant) is listed in one place, and commands deal in plain dataclasses."""

from __future__ import annotations

import contextlib
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client import ApiClient, ApiException
from kubernetes.config.config_exception import ConfigException

from ops.model import (
    Condition,
    ContainerInfo,
    DeploymentInfo,
    EventInfo,
    HpaInfo,
    IngressInfo,
    JobInfo,
    MetricInfo,
    PdbInfo,
    PodInfo,
    ReleaseState,
    Revision,
    ServiceInfo,
)

INSTANCE = "app.kubernetes.io/instance"
NAME = "app.kubernetes.io/name"
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
TEMPLATE_HASH = "pod-template-hash"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"  # the annotation `kubectl rollout restart` sets
JOB_NAME = "batch.kubernetes.io/job-name"
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

# Warning events older than this are history, not the release's present state.
RECENT_EVENTS_SECONDS = 3600


class KubeError(Exception):
    """An API call failed; the message is the API server's own, fit for an operator."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(KubeError):
    pass


def _error(exc: ApiException, doing: str) -> KubeError:
    message = exc.reason or "error"
    with contextlib.suppress(ValueError, AttributeError):
        message = json.loads(exc.body or "{}").get("message") or message
    kind = NotFound if exc.status == 404 else KubeError
    return kind(f"{doing}: {message} (HTTP {exc.status})", status=exc.status)


def _conditions(items: list[Any] | None) -> list[Condition]:
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


def _selector(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def _revision(annotations: dict[str, str] | None) -> int:
    try:
        return int((annotations or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _images(template: client.V1PodTemplateSpec | None) -> dict[str, str]:
    if template is None or template.spec is None:
        return {}
    return {c.name: c.image or "" for c in template.spec.containers}


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


def _pod(pod: client.V1Pod) -> PodInfo:
    meta, status = pod.metadata, pod.status
    containers = [_container(c) for c in (status.container_statuses or [])] if status else []
    conditions = _conditions(status.conditions if status else None)
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
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
        conditions=conditions,
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


def _hpa(hpa: client.V2HorizontalPodAutoscaler) -> HpaInfo:
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
        conditions=_conditions(status.conditions if status else None),
    )


def _default_namespace(kubeconfig: str | None, context: str | None) -> str:
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError):
        if IN_CLUSTER_NAMESPACE.exists():
            return IN_CLUSTER_NAMESPACE.read_text().strip()
        return "default"
    chosen = next((c for c in contexts if c["name"] == context), active) if context else active
    return str((chosen or {}).get("context", {}).get("namespace") or "default")


def _api_client(kubeconfig: str | None, context: str | None) -> ApiClient:
    try:
        api: ApiClient = config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
        return api
    except (ConfigException, OSError) as exc:
        # Running as a pod (a CI job, a debug pod): the ServiceAccount's own credentials.
        if kubeconfig is None and context is None and "KUBERNETES_SERVICE_HOST" in os.environ:
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return ApiClient(configuration)
        raise KubeError(f"no usable kubeconfig: {exc}") from exc


class Cluster:
    """One namespace of one cluster, as the kubeconfig's user (or the user it impersonates)."""

    def __init__(
        self,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        namespace: str | None = None,
        impersonate: str | None = None,
    ) -> None:
        self.api = _api_client(kubeconfig, context)
        if impersonate:
            # As `kubectl --as`: a ServiceAccount user gets its groups from the API server.
            self.api.set_default_header("Impersonate-User", impersonate)  # type: ignore[no-untyped-call]
        self.namespace = namespace or _default_namespace(kubeconfig, context)
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.autoscaling = client.AutoscalingV2Api(self.api)
        self.policy = client.PolicyV1Api(self.api)
        self.networking = client.NetworkingV1Api(self.api)
        self.discovery = client.DiscoveryV1Api(self.api)

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]

    def as_json(self, model: Any) -> dict[str, Any]:
        """The object as the API server spells it (camelCase), for diffs, output and new manifests."""
        return dict(self.api.sanitize_for_serialization(model))  # type: ignore[no-untyped-call]

    # --- reading -------------------------------------------------------------------------------

    def find_deployment(self, release: str) -> str:
        """The release's Deployment, found by the chart's instance label rather than by its name."""
        try:
            items = self.apps.list_namespaced_deployment(
                self.namespace, label_selector=f"{INSTANCE}={release}"
            ).items
        except ApiException as exc:
            raise _error(exc, f"listing Deployments in {self.namespace}") from exc
        if len(items) > 1:
            # A chart dependency may share the instance label; the service's own is named inkwell.
            items = [
                d for d in items if d.metadata and (d.metadata.labels or {}).get(NAME) == "inkwell"
            ] or items
        if not items:
            raise NotFound(f"no Deployment labelled {INSTANCE}={release} in namespace {self.namespace}")
        if len(items) > 1:
            names = ", ".join(sorted(d.metadata.name or "" for d in items if d.metadata))
            raise KubeError(f"release {release} has several Deployments ({names}); cannot choose")
        meta = items[0].metadata
        assert meta is not None
        return str(meta.name)

    def _read_deployment(self, name: str) -> client.V1Deployment:
        try:
            return self.apps.read_namespaced_deployment(name, self.namespace)
        except ApiException as exc:
            raise _error(exc, f"reading Deployment {name}") from exc

    def deployment(self, name: str) -> DeploymentInfo:
        return self._deployment_info(self._read_deployment(name))

    def _deployment_info(self, deployment: client.V1Deployment) -> DeploymentInfo:
        meta, spec, status = deployment.metadata, deployment.spec, deployment.status
        assert meta is not None
        assert spec is not None
        return DeploymentInfo(
            name=meta.name or "",
            namespace=meta.namespace or self.namespace,
            revision=_revision(meta.annotations),
            images=_images(spec.template),
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
            conditions=_conditions(status.conditions if status else None),
        )

    def _replicasets(self, deployment: client.V1Deployment) -> list[client.V1ReplicaSet]:
        assert deployment.spec is not None
        assert deployment.metadata is not None
        selector = _selector(deployment.spec.selector.match_labels or {})
        try:
            items = self.apps.list_namespaced_replica_set(self.namespace, label_selector=selector).items
        except ApiException as exc:
            raise _error(exc, "listing ReplicaSets") from exc
        uid = deployment.metadata.uid
        return [
            rs
            for rs in items
            if rs.metadata
            and any(ref.uid == uid and ref.controller for ref in (rs.metadata.owner_references or []))
        ]

    def revisions(self, name: str) -> list[Revision]:
        """The Deployment's revisions, oldest first, as `kubectl rollout history` lists them."""
        deployment = self._read_deployment(name)
        return self._revisions(deployment)

    def _revisions(self, deployment: client.V1Deployment) -> list[Revision]:
        assert deployment.metadata is not None
        current = _revision(deployment.metadata.annotations)
        revisions = []
        for rs in self._replicasets(deployment):
            meta = rs.metadata
            assert meta is not None
            assert rs.spec is not None
            number = _revision(meta.annotations)
            revisions.append(
                Revision(
                    revision=number,
                    replicaset=meta.name or "",
                    images=_images(rs.spec.template),
                    created=meta.creation_timestamp,
                    replicas=(rs.status.replicas if rs.status else None) or 0,
                    ready=(rs.status.ready_replicas if rs.status else None) or 0,
                    current=number == current,
                    change_cause=(meta.annotations or {}).get(CHANGE_CAUSE, ""),
                    template_hash=(meta.labels or {}).get(TEMPLATE_HASH, ""),
                )
            )
        return sorted(revisions, key=lambda r: r.revision)

    def release_state(self, release: str) -> ReleaseState:
        name = self.find_deployment(release)
        deployment = self._read_deployment(name)
        info = self._deployment_info(deployment)
        revisions = self._revisions(deployment)
        owners = {r.replicaset for r in revisions}
        try:
            pods = [
                _pod(p)
                for p in self.core.list_namespaced_pod(
                    self.namespace, label_selector=_selector(info.selector)
                ).items
                # Only the Deployment's pods: a migration Job's pods may carry the same labels.
                if p.metadata and any(ref.name in owners for ref in (p.metadata.owner_references or []))
            ]
        except ApiException as exc:
            raise _error(exc, "listing pods") from exc
        by_release = f"{INSTANCE}={release}"
        try:
            pdbs = self.policy.list_namespaced_pod_disruption_budget(
                self.namespace, label_selector=by_release
            ).items
            services = self.core.list_namespaced_service(self.namespace, label_selector=by_release).items
            ingresses = self.networking.list_namespaced_ingress(
                self.namespace, label_selector=by_release
            ).items
        except ApiException as exc:
            raise _error(exc, "listing the release's objects") from exc
        hpa = self.hpa_for(name)
        service_infos = [self._service(s.metadata.name or "") for s in services if s.metadata]
        ingress_infos = [self._ingress(i) for i in ingresses]
        names = {name, *owners, *(p.name for p in pods), *(s.name for s in service_infos)}
        names |= {i.name for i in ingress_infos} | {p.metadata.name or "" for p in pdbs if p.metadata}
        if hpa is not None:
            names.add(hpa.name)
        return ReleaseState(
            namespace=self.namespace,
            release=release,
            deployment=info,
            revisions=revisions,
            pods=sorted(pods, key=lambda p: p.name),
            hpa=hpa,
            pdbs=[
                PdbInfo(
                    name=p.metadata.name or "",
                    disruptions_allowed=p.status.disruptions_allowed or 0,
                    current_healthy=p.status.current_healthy or 0,
                    desired_healthy=p.status.desired_healthy or 0,
                    expected_pods=p.status.expected_pods or 0,
                )
                for p in pdbs
                if p.metadata and p.status
            ],
            services=service_infos,
            ingresses=ingress_infos,
            warnings=self._warnings(names),
            observed_at=datetime.now(UTC),
        )

    def _service(self, name: str) -> ServiceInfo:
        try:
            slices = self.discovery.list_namespaced_endpoint_slice(
                self.namespace, label_selector=f"kubernetes.io/service-name={name}"
            ).items
        except ApiException as exc:
            raise _error(exc, f"listing the EndpointSlices of Service {name}") from exc
        ready: set[str] = set()
        not_ready: set[str] = set()
        for endpoint_slice in slices:
            for endpoint in endpoint_slice.endpoints or []:
                # One endpoint per pod, however many address families the slices repeat it in.
                key = endpoint.target_ref.name if endpoint.target_ref else ",".join(endpoint.addresses)
                is_ready = endpoint.conditions is None or endpoint.conditions.ready is not False
                (ready if is_ready else not_ready).add(key or "")
        return ServiceInfo(name=name, ready_endpoints=len(ready), not_ready_endpoints=len(not_ready - ready))

    @staticmethod
    def _ingress(ingress: client.V1Ingress) -> IngressInfo:
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

    def _warnings(self, names: set[str]) -> list[EventInfo]:
        try:
            events = self.core.list_namespaced_event(self.namespace, field_selector="type=Warning").items
        except ApiException as exc:
            raise _error(exc, "listing events") from exc
        now = datetime.now(UTC)
        found = []
        for event in events:
            obj = event.involved_object
            if obj.name not in names:
                continue
            seen = (
                event.last_timestamp
                or event.event_time
                or (event.metadata.creation_timestamp if event.metadata else None)
            )
            if seen is not None and (now - seen).total_seconds() > RECENT_EVENTS_SECONDS:
                continue
            found.append(
                EventInfo(
                    type=event.type or "Warning",
                    reason=event.reason or "",
                    kind=obj.kind or "",
                    name=obj.name or "",
                    message=(event.message or "").strip(),
                    count=event.count or 1,
                    last_seen=seen,
                )
            )
        return sorted(found, key=lambda e: e.last_seen or now)[-20:]

    def hpa_for(self, deployment: str) -> HpaInfo | None:
        """The HorizontalPodAutoscaler whose scale target is the Deployment, whatever its labels."""
        try:
            items = self.autoscaling.list_namespaced_horizontal_pod_autoscaler(self.namespace).items
        except ApiException as exc:
            raise _error(exc, "listing HorizontalPodAutoscalers") from exc
        for hpa in items:
            target = hpa.spec.scale_target_ref if hpa.spec else None
            if target is not None and target.kind == "Deployment" and target.name == deployment:
                return _hpa(hpa)
        return None

    # --- changing the Deployment -----------------------------------------------------------------

    def pod_template(self, name: str) -> dict[str, Any]:
        deployment = self._read_deployment(name)
        assert deployment.spec is not None
        return self.as_json(deployment.spec.template)

    def _patch_template(
        self, name: str, body: Any, *, content_type: str, dry_run: bool, doing: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Patches the Deployment (or has the API server validate the patch, for a dry run); returns its
        pod template before and after."""
        before = self._read_deployment(name)
        assert before.spec is not None
        try:
            after = self.apps.patch_namespaced_deployment(
                name,
                self.namespace,
                body,
                dry_run="All" if dry_run else None,
                field_manager="inkwell-ops",
                _content_type=content_type,
            )
        except ApiException as exc:
            raise _error(exc, f"{doing} Deployment {name}") from exc
        assert after.spec is not None
        return self.as_json(before.spec.template), self.as_json(after.spec.template)

    def set_image(
        self, name: str, *, container: str, image: str, labels: dict[str, str], dry_run: bool = False
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Sets one container's image (and extra pod labels)."""
        template: dict[str, Any] = {"spec": {"containers": [{"name": container, "image": image}]}}
        if labels:
            template["metadata"] = {"labels": labels}
        return self._patch_template(
            name, {"spec": {"template": template}}, content_type=STRATEGIC, dry_run=dry_run, doing="patching"
        )

    def rollback(
        self, name: str, revision: int, *, dry_run: bool = False
    ) -> tuple[Revision, dict[str, Any], dict[str, Any]]:
        """Restores a revision's pod template, as `kubectl rollout undo` does (apps/v1 has no rollback)."""
        deployment = self._read_deployment(name)
        revisions = self._revisions(deployment)
        target = next((r for r in revisions if r.revision == revision), None)
        if target is None:
            known = ", ".join(str(r.revision) for r in revisions) or "none"
            raise NotFound(f"Deployment {name} has no revision {revision} (revisions: {known})")
        (replicaset,) = [
            rs
            for rs in self._replicasets(deployment)
            if rs.metadata and rs.metadata.name == target.replicaset
        ]
        assert replicaset.spec is not None
        template = self.as_json(replicaset.spec.template)
        # The hash label belongs to the ReplicaSet; the controller adds it back to a matching template.
        template.get("metadata", {}).get("labels", {}).pop(TEMPLATE_HASH, None)
        patch = [{"op": "replace", "path": "/spec/template", "value": template}]
        before, after = self._patch_template(
            name, patch, content_type=JSON_PATCH, dry_run=dry_run, doing="rolling back"
        )
        return target, before, after

    def restart(
        self, name: str, at: datetime, *, dry_run: bool = False
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at.isoformat()}}}}}
        return self._patch_template(name, patch, content_type=STRATEGIC, dry_run=dry_run, doing="restarting")

    def scale(self, name: str, replicas: int, *, dry_run: bool = False) -> None:
        try:
            self.apps.patch_namespaced_deployment_scale(
                name,
                self.namespace,
                {"spec": {"replicas": replicas}},
                dry_run="All" if dry_run else None,
                field_manager="inkwell-ops",
                _content_type=MERGE,
            )
        except ApiException as exc:
            raise _error(exc, f"scaling Deployment {name}") from exc

    def set_hpa_bounds(
        self, name: str, *, min_replicas: int, max_replicas: int, dry_run: bool = False
    ) -> None:
        try:
            self.autoscaling.patch_namespaced_horizontal_pod_autoscaler(
                name,
                self.namespace,
                {"spec": {"minReplicas": min_replicas, "maxReplicas": max_replicas}},
                dry_run="All" if dry_run else None,
                field_manager="inkwell-ops",
                _content_type=MERGE,
            )
        except ApiException as exc:
            raise _error(exc, f"patching HorizontalPodAutoscaler {name}") from exc

    # --- Jobs ------------------------------------------------------------------------------------

    def create_job(self, manifest: dict[str, Any]) -> str:
        try:
            body = client.V1Job.from_dict(manifest)
            assert body is not None
            job = self.batch.create_namespaced_job(self.namespace, body, field_manager="inkwell-ops")
        except ApiException as exc:
            raise _error(exc, "creating the Job") from exc
        assert job.metadata is not None
        return str(job.metadata.name)

    def job(self, name: str) -> JobInfo:
        try:
            job = self.batch.read_namespaced_job(name, self.namespace)
        except ApiException as exc:
            raise _error(exc, f"reading Job {name}") from exc
        status = job.status
        conditions = _conditions(status.conditions if status else None)
        # Complete and Failed are the final word; SuccessCriteriaMet and FailureTarget come before them.
        final = next((c for c in conditions if c.type in ("Complete", "Failed") and c.status == "True"), None)
        return JobInfo(
            name=name,
            active=(status.active if status else None) or 0,
            succeeded=(status.succeeded if status else None) or 0,
            failed=(status.failed if status else None) or 0,
            done=final is not None,
            complete=final is not None and final.type == "Complete",
            reason=final.reason if final else "",
            message=final.message if final else "",
        )

    def job_pods(self, name: str) -> list[PodInfo]:
        try:
            items = self.core.list_namespaced_pod(self.namespace, label_selector=f"{JOB_NAME}={name}").items
        except ApiException as exc:
            raise _error(exc, f"listing the pods of Job {name}") from exc
        return sorted((_pod(p) for p in items), key=lambda p: p.created or datetime.now(UTC))

    def pod_log(self, pod: str, container: str) -> str:
        try:
            return str(self.core.read_namespaced_pod_log(pod, self.namespace, container=container))
        except ApiException as exc:
            raise _error(exc, f"reading the log of {pod}") from exc

    def delete_job(self, name: str, *, timeout: float = 60) -> bool:
        """Deletes the Job and, first, its pods (foreground); True once both are gone."""
        try:
            self.batch.delete_namespaced_job(name, self.namespace, propagation_policy="Foreground")
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise _error(exc, f"deleting Job {name}") from exc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.batch.read_namespaced_job(name, self.namespace)
            except ApiException as exc:
                if exc.status == 404:
                    return True
                raise _error(exc, f"reading Job {name}") from exc
            time.sleep(0.5)
        return False
