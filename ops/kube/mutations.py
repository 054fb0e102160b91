"""Every change the CLI makes to a release (the Deployment's pod template, its scale, the HPA's bounds),
each one patchable as a server-side dry run that the API server validates and does not store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubernetes.client import ApiException

from ops.kube.connection import FIELD_MANAGER, Connection, Query, without_nulls
from ops.kube.convert import TEMPLATE_HASH
from ops.kube.errors import NotFound, api_error
from ops.kube.reads import Reads
from ops.model import Revision

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"  # the annotation `kubectl rollout restart` sets

STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def _query(dry_run: bool = False) -> Query:
    return [("dryRun", "All" if dry_run else None), ("fieldManager", FIELD_MANAGER)]


def _template(deployment: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = without_nulls(deployment.get("spec", {}).get("template", {}))
    return template


class Mutations:
    def __init__(self, connection: Connection, reads: Reads) -> None:
        self.connection = connection
        self.namespace = connection.namespace
        self.reads = reads

    def _patch_template(
        self, name: str, body: Any, *, content_type: str, dry_run: bool, doing: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Patches the Deployment (or has the API server validate the patch, for a dry run); returns its
        pod template before and after."""
        before = self.reads.read_deployment(name)
        try:
            after = self.connection.call(
                "PATCH", "deployments", name, query=_query(dry_run), body=body, content_type=content_type
            )
        except ApiException as exc:
            raise api_error(exc, f"{doing} Deployment {name}") from exc
        return _template(before), _template(after)

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
        deployment = self.reads.read_deployment(name)
        replicasets = self.reads.replicasets(deployment)
        revisions = self.reads.revisions_of(deployment, replicasets)
        target = next((r for r in revisions if r.revision == revision), None)
        if target is None:
            known = ", ".join(str(r.revision) for r in revisions) or "none"
            raise NotFound(f"Deployment {name} has no revision {revision} (revisions: {known})")
        (replicaset,) = [rs for rs in replicasets if rs.get("metadata", {}).get("name") == target.replicaset]
        template = _template(replicaset)
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
            self.connection.call(
                "PATCH",
                "deployments",
                name,
                subresource="scale",
                query=_query(dry_run),
                body={"spec": {"replicas": replicas}},
                content_type=MERGE,
            )
        except ApiException as exc:
            raise api_error(exc, f"scaling Deployment {name}") from exc

    def set_hpa_bounds(
        self, name: str, *, min_replicas: int, max_replicas: int, dry_run: bool = False
    ) -> None:
        try:
            self.connection.call(
                "PATCH",
                "horizontalpodautoscalers",
                name,
                query=_query(dry_run),
                body={"spec": {"minReplicas": min_replicas, "maxReplicas": max_replicas}},
                content_type=MERGE,
            )
        except ApiException as exc:
            raise api_error(exc, f"patching HorizontalPodAutoscaler {name}") from exc

    def mark_revision(self, replicaset: str, annotations: dict[str, str | None]) -> None:
        """Records on a revision's ReplicaSet how its rollout ended (ops.kube.convert's annotations; None
        removes one), where it outlives this process and is read back by `history` and `rollback`."""
        try:
            self.connection.call(
                "PATCH",
                "replicasets",
                replicaset,
                query=_query(),
                body={"metadata": {"annotations": annotations}},
                content_type=MERGE,
            )
        except ApiException as exc:
            raise api_error(exc, f"recording the outcome on ReplicaSet {replicaset}") from exc
