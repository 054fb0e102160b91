"""Which Inkwell releases are deployed in a namespace (or in all): the chart's Deployments, found by its
labels in one LIST, with the Helm release and revision read from what Helm and the chart stamp on them, so
that listing needs no access to Helm's release Secrets."""

from __future__ import annotations

import re

from kubernetes.client import ApiException

from ops.kube import convert
from ops.kube.connection import Connection, Json
from ops.kube.errors import KubeError, api_error
from ops.model import DeployedRelease

PART_OF = "app.kubernetes.io/part-of"
INSTANCE = "app.kubernetes.io/instance"
VERSION = "app.kubernetes.io/version"
CHART = "helm.sh/chart"
HELM_RELEASE = "meta.helm.sh/release-name"  # Helm 3 annotates every object it installs
HELM_REVISION = "inkwell.dev/helm-revision"  # charts/inkwell/templates/deployment.yaml
CHART_NAME = "inkwell"
ALL_NAMESPACES_RBAC = "kubectl apply -f k8s/rbac/inkwell-ops-all-namespaces.yaml"


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _release(deployment: Json, namespace: str) -> DeployedRelease:
    info = convert.deployment(deployment, namespace=namespace)
    labels, annotations = convert.labels_of(deployment), convert.annotations_of(deployment)
    return DeployedRelease(
        namespace=info.namespace,
        release=labels.get(INSTANCE, ""),
        deployment=info.name,
        chart=labels.get(CHART, ""),
        app_version=labels.get(VERSION, ""),
        helm_release=annotations.get(HELM_RELEASE),
        helm_revision=_int(annotations.get(HELM_REVISION)),
        images=info.images,
        desired=info.desired,
        updated=info.updated,
        ready=info.ready,
        available=info.available,
        revision=info.revision,
        created=convert.time(convert.metadata(deployment).get("creationTimestamp")),
    )


def deployed(connection: Connection, *, all_namespaces: bool = False) -> list[DeployedRelease]:
    """The chart's Deployments: part-of=inkwell, and a helm.sh/chart label naming this chart (a chart that
    depends on it may label its own objects part-of=inkwell too)."""
    selector = f"{PART_OF}={CHART_NAME},{CHART}"
    where = "all namespaces" if all_namespaces else f"namespace {connection.namespace}"
    try:
        items = connection.list("deployments", label_selector=selector, all_namespaces=all_namespaces)
    except ApiException as exc:
        error = api_error(exc, f"listing Deployments in {where}")
        if all_namespaces and exc.status == 403:
            # The CLI's Role is namespaced; -A needs the one cluster-wide right the optional file grants.
            hint = f"-A needs cluster-wide `list deployments` ({ALL_NAMESPACES_RBAC}); or ask one namespace with -n"
            raise KubeError(f"{error}; {hint}", status=403) from exc
        raise error from exc
    found = [
        _release(d, connection.namespace)
        for d in items
        if re.fullmatch(rf"{CHART_NAME}-\d.*", convert.labels_of(d).get(CHART, ""))
    ]
    return sorted(found, key=lambda r: (r.namespace, r.release))
