"""Everything the CLI reads from the cluster (list and get, never a change): the release's Deployment, its
revisions, its pods, HPA, PDBs, Services, Ingresses and recent warnings."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client import ApiException

from ops.kube import convert
from ops.kube.connection import Connection
from ops.kube.errors import KubeError, NotFound, api_error
from ops.model import (
    DeploymentInfo,
    EventInfo,
    HpaInfo,
    PodInfo,
    ReleaseState,
    Revision,
    RolloutPods,
    ServiceInfo,
)

INSTANCE = "app.kubernetes.io/instance"
NAME = "app.kubernetes.io/name"

# Warning events older than this are history, not the release's present state.
RECENT_EVENTS_SECONDS = 3600


def selector(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


class Reads:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.namespace = connection.namespace
        self.core, self.apps, self.policy = connection.core, connection.apps, connection.policy
        self.networking, self.discovery = connection.networking, connection.discovery
        self.autoscaling = connection.autoscaling

    def find_deployment(self, release: str) -> str:
        """The release's Deployment, found by the chart's instance label rather than by its name."""
        meta = self._find(release).metadata
        assert meta is not None
        return str(meta.name)

    def _find(self, release: str) -> client.V1Deployment:
        """The Deployment itself, from the LIST that found it: no second request for the same object."""
        try:
            items = self.apps.list_namespaced_deployment(
                self.namespace, label_selector=f"{INSTANCE}={release}"
            ).items
        except ApiException as exc:
            raise api_error(exc, f"listing Deployments in {self.namespace}") from exc
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
        deployment: client.V1Deployment = items[0]
        return deployment

    def read_deployment(self, name: str) -> client.V1Deployment:
        """The API object itself, for the adapter's own patches; everyone else reads `deployment`."""
        try:
            return self.apps.read_namespaced_deployment(name, self.namespace)
        except ApiException as exc:
            raise api_error(exc, f"reading Deployment {name}") from exc

    def deployment(self, name: str) -> DeploymentInfo:
        return convert.deployment(self.read_deployment(name), namespace=self.namespace)

    def pod_template(self, name: str) -> dict[str, Any]:
        deployment = self.read_deployment(name)
        assert deployment.spec is not None
        return self.connection.as_json(deployment.spec.template)

    def replicasets(self, deployment: client.V1Deployment) -> list[client.V1ReplicaSet]:
        """The ReplicaSets the Deployment controls: its revisions, each with its pod template."""
        assert deployment.spec is not None
        assert deployment.metadata is not None
        by_selector = selector(deployment.spec.selector.match_labels or {})
        try:
            items = self.apps.list_namespaced_replica_set(self.namespace, label_selector=by_selector).items
        except ApiException as exc:
            raise api_error(exc, "listing ReplicaSets") from exc
        uid = deployment.metadata.uid
        return [
            rs
            for rs in items
            if rs.metadata
            and any(ref.uid == uid and ref.controller for ref in (rs.metadata.owner_references or []))
        ]

    def revisions(self, name: str) -> list[Revision]:
        """The Deployment's revisions, oldest first, as `kubectl rollout history` lists them."""
        return self.revisions_of(self.read_deployment(name))

    def revisions_of(self, deployment: client.V1Deployment) -> list[Revision]:
        assert deployment.metadata is not None
        current = convert.revision_number(deployment.metadata.annotations)
        revisions = [convert.revision(rs, current=current) for rs in self.replicasets(deployment)]
        return sorted(revisions, key=lambda r: r.revision)

    def release_state(self, release: str) -> ReleaseState:
        deployment = self._find(release)
        assert deployment.metadata is not None
        name = str(deployment.metadata.name)
        info = convert.deployment(deployment, namespace=self.namespace)
        revisions = self.revisions_of(deployment)
        owners = {r.replicaset for r in revisions}
        try:
            pods = [
                convert.pod(p)
                for p in self.core.list_namespaced_pod(
                    self.namespace, label_selector=selector(info.selector)
                ).items
                # Only the Deployment's pods: a migration Job's pods may carry the same labels.
                if p.metadata and any(ref.name in owners for ref in (p.metadata.owner_references or []))
            ]
        except ApiException as exc:
            raise api_error(exc, "listing pods") from exc
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
            raise api_error(exc, "listing the release's objects") from exc
        hpa = self.hpa_for(name)
        service_infos = self._services([s.metadata.name or "" for s in services if s.metadata])
        ingress_infos = [convert.ingress(i) for i in ingresses]
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
            pdbs=[convert.pdb(p) for p in pdbs if p.metadata and p.status],
            services=service_infos,
            ingresses=ingress_infos,
            warnings=self._warnings(names),
            observed_at=datetime.now(UTC),
        )

    def rollout_pods(self, deployment: DeploymentInfo, *, warnings: bool = True) -> RolloutPods:
        """The pods of the Deployment's current revision (its new ReplicaSet during a rollout) and their
        recent warnings: what a wait counts and explains. Before the controller has seen the new spec the
        current revision is still the old one, so a caller checks the generations first."""
        by_selector = selector(deployment.selector)
        try:
            items = self.apps.list_namespaced_replica_set(self.namespace, label_selector=by_selector).items
        except ApiException as exc:
            raise api_error(exc, "listing ReplicaSets") from exc
        current = [
            rs
            for rs in items
            if rs.metadata
            and rs.metadata.name
            and rs.metadata.name.startswith(f"{deployment.name}-")
            and convert.revision_number(rs.metadata.annotations) == deployment.revision
        ]
        if not current:
            return RolloutPods(None, [], [])
        revision = convert.revision(current[0], current=deployment.revision)
        try:
            found = self.core.list_namespaced_pod(
                self.namespace,
                label_selector=f"{by_selector},{convert.TEMPLATE_HASH}={revision.template_hash}",
            ).items
        except ApiException as exc:
            raise api_error(exc, "listing pods") from exc
        pods: list[PodInfo] = sorted((convert.pod(p) for p in found), key=lambda p: p.name)
        events = self._warnings({p.name for p in pods}) if warnings and pods else []
        return RolloutPods(revision, pods, events)

    def _services(self, names: list[str]) -> list[ServiceInfo]:
        """Each Service's ready and not-ready endpoints, from one LIST of all their EndpointSlices."""
        if not names:
            return []
        service_name = "kubernetes.io/service-name"
        try:
            slices = self.discovery.list_namespaced_endpoint_slice(
                self.namespace, label_selector=f"{service_name} in ({','.join(sorted(names))})"
            ).items
        except ApiException as exc:
            raise api_error(exc, f"listing the EndpointSlices of Services {', '.join(names)}") from exc
        ready: dict[str, set[str]] = {name: set() for name in names}
        not_ready: dict[str, set[str]] = {name: set() for name in names}
        for endpoint_slice in slices:
            service = ((endpoint_slice.metadata and endpoint_slice.metadata.labels) or {}).get(service_name)
            if service is None or service not in ready:
                continue
            for endpoint in endpoint_slice.endpoints or []:
                # One endpoint per pod, however many address families the slices repeat it in.
                key = endpoint.target_ref.name if endpoint.target_ref else ",".join(endpoint.addresses)
                is_ready = endpoint.conditions is None or endpoint.conditions.ready is not False
                (ready if is_ready else not_ready)[service].add(key or "")
        return [
            ServiceInfo(
                name=name,
                ready_endpoints=len(ready[name]),
                not_ready_endpoints=len(not_ready[name] - ready[name]),
            )
            for name in names
        ]

    def _warnings(self, names: set[str]) -> list[EventInfo]:
        try:
            events = self.core.list_namespaced_event(self.namespace, field_selector="type=Warning").items
        except ApiException as exc:
            raise api_error(exc, "listing events") from exc
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
            raise api_error(exc, "listing HorizontalPodAutoscalers") from exc
        for hpa in items:
            target = hpa.spec.scale_target_ref if hpa.spec else None
            if target is not None and target.kind == "Deployment" and target.name == deployment:
                return convert.hpa(hpa)
        return None

    def hpa_generations(self, name: str) -> tuple[int, int | None]:
        """The HPA's generation and the one its controller last acted on (status.observedGeneration, which
        the Python client's model does not carry yet: read raw); None where the cluster does not report it.
        A list by name, as hpa_for lists, so the Role needs no `get`."""
        try:
            response: Any = self.autoscaling.list_namespaced_horizontal_pod_autoscaler(
                self.namespace, field_selector=f"metadata.name={name}", _preload_content=False
            )
        except ApiException as exc:
            raise api_error(exc, f"reading HorizontalPodAutoscaler {name}") from exc
        items = json.loads(response.data).get("items") or []
        if not items:
            raise NotFound(f"no HorizontalPodAutoscaler {name} in namespace {self.namespace}")
        observed = items[0].get("status", {}).get("observedGeneration")
        return int(items[0]["metadata"].get("generation", 0)), None if observed is None else int(observed)

    def hpa(self, name: str) -> HpaInfo:
        try:
            items = self.autoscaling.list_namespaced_horizontal_pod_autoscaler(
                self.namespace, field_selector=f"metadata.name={name}"
            ).items
        except ApiException as exc:
            raise api_error(exc, f"reading HorizontalPodAutoscaler {name}") from exc
        if not items:
            raise NotFound(f"no HorizontalPodAutoscaler {name} in namespace {self.namespace}")
        return convert.hpa(items[0])
