"""How the CLI reaches a cluster: the kubeconfig's user (or a pod's ServiceAccount), impersonation, the
namespace, and one client per API group, shared by the reads, mutations and jobs clients.

Every request has a deadline (`--request-timeout`, kubectl's meaning: one request, not the command) and no
silent retries: an API server that accepts connections and never answers would otherwise hold the CLI
forever, and urllib3's default retries multiply any deadline by four. A server that cannot be reached at all
becomes one Unreachable line instead of urllib3's traceback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client import ApiClient, ApiException
from kubernetes.client.rest import RESTResponse
from kubernetes.config.config_exception import ConfigException
from yaml import YAMLError

from ops.config import DEFAULT_REQUEST_TIMEOUT
from ops.kube.errors import Unreachable, UnusableKubeconfig

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
# The name the API server records as the manager of every field the CLI sets.
FIELD_MANAGER = "inkwell-ops"


def kubeconfig_path(kubeconfig: str | None) -> str:
    """The file(s) the client reads, for messages: the option (or $KUBECONFIG, which typer maps onto it)."""
    return kubeconfig or str(Path("~/.kube/config").expanduser())


def _unreachable(host: str, exc: Exception, timeout: float | None) -> Unreachable:
    """One line for what urllib3 reports as a chain of wrapped exceptions."""
    reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason else exc
    # urllib3 makes a failed connection a kind of ConnectTimeoutError, and a failed lookup a kind of
    # failed connection: the most specific first.
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return Unreachable(f"cannot resolve the API server's address {host}")
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        if isinstance(reason.__cause__ or reason.__context__, ConnectionRefusedError):
            return Unreachable(
                f"the connection to the API server at {host} was refused: is the cluster up, and is this "
                "the right kubeconfig and context?"
            )
        return Unreachable(f"cannot connect to the API server at {host}: {reason.__cause__ or reason}")
    if isinstance(reason, urllib3.exceptions.TimeoutError):
        return Unreachable(
            f"the API server at {host} did not answer within {timeout:g}s "
            "(--request-timeout; is the address right and the server healthy?)"
        )
    detail = str(reason).splitlines()[0] if str(reason) else type(reason).__name__
    return Unreachable(f"cannot reach the API server at {host}: {detail}")


class _Client(ApiClient):
    """The generated client, with a deadline on every request and transport failures as Unreachable."""

    request_timeout: float | None = DEFAULT_REQUEST_TIMEOUT

    def call_api(
        self,
        method: Any,
        url: Any,
        header_params: Any = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> RESTResponse:
        timeout = _request_timeout if _request_timeout is not None else self.request_timeout
        host = str(self.configuration.host)
        try:
            return super().call_api(method, url, header_params, body, post_params, _request_timeout=timeout)
        except urllib3.exceptions.HTTPError as exc:
            raise _unreachable(host, exc, timeout) from None
        except ApiException as exc:
            # The client reports a failed TLS handshake as an ApiException without a status.
            if exc.status == 0:
                raise _unreachable(host, Exception(exc.reason or "TLS error"), timeout) from None
            raise


def _default_namespace(kubeconfig: str | None, context: str | None) -> str:
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError, YAMLError):
        if IN_CLUSTER_NAMESPACE.exists():
            return IN_CLUSTER_NAMESPACE.read_text().strip()
        return "default"
    chosen = next((c for c in contexts if c["name"] == context), active) if context else active
    return str((chosen or {}).get("context", {}).get("namespace") or "default")


def _api_client(kubeconfig: str | None, context: str | None) -> _Client:
    configuration = client.Configuration()
    # No retries: a deadline per request means one attempt per request, as kubectl makes.
    configuration.retries = False
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
    except (ConfigException, OSError, YAMLError, TypeError, AttributeError) as exc:
        # Running as a pod (a CI job, a debug pod): the ServiceAccount's own credentials.
        if kubeconfig is None and context is None and "KUBERNETES_SERVICE_HOST" in os.environ:
            configuration = client.Configuration()
            configuration.retries = False
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return _Client(configuration)
        # A file that is not a kubeconfig at all (a YAML list, plain text) fails inside the loader with a
        # TypeError or AttributeError; either way the file, not the cluster, is what to fix.
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UnusableKubeconfig(f"no usable kubeconfig at {kubeconfig_path(kubeconfig)}: {reason}") from None
    return _Client(configuration)


class Connection:
    """The API client for one namespace of one cluster, as the kubeconfig's user (or the one it impersonates)."""

    def __init__(
        self,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        namespace: str | None = None,
        impersonate: str | None = None,
        request_timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        self.api = _api_client(kubeconfig, context)
        # 0 or None: no deadline, as `kubectl --request-timeout=0`.
        self.api.request_timeout = request_timeout or None
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
