"""How the CLI reaches a cluster: the kubeconfig's user (or a pod's ServiceAccount), impersonation, the
namespace, and one client per API group, shared by the reads, mutations and jobs clients."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client import ApiClient
from kubernetes.config.config_exception import ConfigException

from ops.kube.errors import KubeError

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
# The name the API server records as the manager of every field the CLI sets.
FIELD_MANAGER = "inkwell-ops"


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


class Connection:
    """The API client for one namespace of one cluster, as the kubeconfig's user (or the one it impersonates)."""

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
