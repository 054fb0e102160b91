"""How the CLI reaches a cluster: the kubeconfig's user (or a pod's ServiceAccount), impersonation, the
namespace, and one HTTP request per call, shared by the reads, mutations and jobs clients.

The official client loads the kubeconfig (auth plugins, TLS) and sends the requests, but its generated API
classes and models are not used: importing CoreV1Api alone builds some 375 pydantic models and 413
validate_call wrappers (about 1 s of a 2 s `status`, measured with cProfile on the test cluster), and
deserialising into them costs more again. Each call is one request built from RESOURCES below, and its
answer is the API server's JSON, which ops.kube.convert reads.

Every request has a deadline (`--request-timeout`, kubectl's meaning: one request, not the command) and no
silent retries: an API server that accepts connections and never answers would otherwise hold the CLI
forever, and urllib3's default retries multiply any deadline by four. A server that cannot be reached at all
becomes one Unreachable line instead of urllib3's traceback."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes import config
from kubernetes.client import ApiClient, ApiException, Configuration
from kubernetes.client.rest import RESTResponse
from kubernetes.config.config_exception import ConfigException
from yaml import YAMLError

from ops.config import DEFAULT_REQUEST_TIMEOUT
from ops.kube.errors import Unreachable, UnusableKubeconfig

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
# The name the API server records as the manager of every field the CLI sets.
FIELD_MANAGER = "inkwell-ops"

# An object or a list as the API server spells it (camelCase keys, RFC 3339 times).
Json = dict[str, Any]
Query = Sequence[tuple[str, str | int | bool | None]]

# The resources the CLI reads and changes, by plural: the API group and version each is served under.
RESOURCES = {
    "pods": "/api/v1",
    "services": "/api/v1",
    "events": "/api/v1",
    "deployments": "/apis/apps/v1",
    "replicasets": "/apis/apps/v1",
    "jobs": "/apis/batch/v1",
    "horizontalpodautoscalers": "/apis/autoscaling/v2",
    "poddisruptionbudgets": "/apis/policy/v1",
    "ingresses": "/apis/networking.k8s.io/v1",
    "endpointslices": "/apis/discovery.k8s.io/v1",
    "pods.metrics.k8s.io": "/apis/metrics.k8s.io/v1beta1",
}


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
    configuration = Configuration()
    # No retries: a deadline per request means one attempt per request, as kubectl makes.
    configuration.retries = False
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
    except (ConfigException, OSError, YAMLError, TypeError, AttributeError) as exc:
        # Running as a pod (a CI job, a debug pod): the ServiceAccount's own credentials.
        if kubeconfig is None and context is None and "KUBERNETES_SERVICE_HOST" in os.environ:
            configuration = Configuration()
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

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]

    def path(
        self, resource: str, name: str | None = None, *, subresource: str = "", all_namespaces: bool = False
    ) -> str:
        """/apis/apps/v1/namespaces/NS/deployments/NAME/scale, from RESOURCES' group and version."""
        plural = resource.partition(".")[0]
        where = "" if all_namespaces else f"/namespaces/{quote(self.namespace, safe='')}"
        path = f"{RESOURCES[resource]}{where}/{plural}"
        if name is not None:
            path += f"/{quote(name, safe='')}"
        return f"{path}/{subresource}" if subresource else path

    def send(
        self,
        method: str,
        path: str,
        *,
        query: Query = (),
        body: Any = None,
        content_type: str | None = None,
        accept: str = "application/json",
        timeout: float | None = None,
    ) -> bytes:
        """One request; the answer's body, or the ApiException the generated client would raise."""
        headers = {"Accept": accept}
        if content_type is not None:
            headers["Content-Type"] = content_type
        elif body is not None:
            headers["Content-Type"] = "application/json"
        request = self.api.param_serialize(
            method,
            path,
            query_params=[(key, value) for key, value in query if value is not None],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        # Looked up on the instance each time, so a test can count the requests.
        response = self.api.call_api(*request, _request_timeout=timeout)
        data: bytes = response.read()  # type: ignore[no-untyped-call]
        if not 200 <= response.status <= 299:
            ApiException.from_response(http_resp=response, body=data.decode("utf-8", "replace"), data=None)
        return data

    def call(
        self,
        method: str,
        resource: str,
        name: str | None = None,
        *,
        subresource: str = "",
        query: Query = (),
        body: Any = None,
        content_type: str | None = None,
        all_namespaces: bool = False,
    ) -> Json:
        """One request to a resource of RESOURCES, its JSON answer as a dict."""
        path = self.path(resource, name, subresource=subresource, all_namespaces=all_namespaces)
        answer = json.loads(self.send(method, path, query=query, body=body, content_type=content_type))
        return answer if isinstance(answer, dict) else {}

    def list(
        self,
        resource: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        all_namespaces: bool = False,
    ) -> list[Json]:
        """The items of one LIST."""
        query = [("labelSelector", label_selector), ("fieldSelector", field_selector)]
        found = self.call("GET", resource, query=query, all_namespaces=all_namespaces)
        return list(found.get("items") or [])

    def get(self, resource: str, name: str) -> Json:
        return self.call("GET", resource, name)

    def log(
        self,
        pod: str,
        *,
        container: str,
        previous: bool = False,
        since_seconds: int | None = None,
        tail_lines: int | None = None,
    ) -> str:
        """A container's log, as text."""
        query = [
            ("container", container),
            ("previous", previous or None),
            ("sinceSeconds", since_seconds),
            ("tailLines", tail_lines),
        ]
        data = self.send("GET", self.path("pods", pod, subresource="log"), query=query, accept="*/*")
        return data.decode("utf-8", "replace")


def without_nulls(value: Any) -> Any:
    """The document without its null fields, as the generated client's models wrote it back."""
    if isinstance(value, Mapping):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value
