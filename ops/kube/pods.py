"""What the runbooks read from a release's pods, through the API server only, so the inkwell-ops Role covers
it without exec, port-forward or delete: each pod's log (the current or the previous container, since a
time), the events of the release's objects, each pod's /readyz asked from inside the cluster through the
API server's pod proxy (GET only), and CPU and memory from metrics.k8s.io where a metrics-server serves it.

The answers are plain dataclasses defined here, as ops.model's are: what the adapter read, not how."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes.client import ApiException

from ops.kube import convert
from ops.kube.connection import Connection
from ops.kube.errors import KubeError, api_error
from ops.kube.reads import Reads, selector

METRICS_GROUP, METRICS_VERSION = "metrics.k8s.io", "v1beta1"
DEFAULT_PORT = 8000  # the chart's container port, named http
# Seconds to wait for one pod's /readyz: the chart's probe allows 2, the API server's dial to an
# address nothing answers on takes longer to give up.
PROBE_TIMEOUT = 10.0


@dataclass(frozen=True)
class PodLog:
    pod: str
    container: str
    text: str | None  # None when the API server could not give it
    error: str = ""


@dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    object: str  # kind/name
    message: str
    count: int
    last_seen: datetime | None
    source: str = ""


@dataclass(frozen=True)
class Readiness:
    pod: str
    port: int
    ready: bool
    reached: bool  # the pod answered (ready or not); False when the API server could not reach it
    status: int | None
    answer: str  # the pod's /readyz document, or why it could not be asked


@dataclass(frozen=True)
class Usage:
    pod: str
    container: str
    cpu_millicores: float
    memory_mib: float


@dataclass
class ReleasePods:
    deployment: str
    pods: list[dict[str, Any]] = field(default_factory=list)  # the API's pod documents (camelCase)


class MetricsUnavailable(KubeError):
    """metrics.k8s.io is not served (no metrics-server), or it is registered but does not answer."""


def _cpu(quantity: str) -> float:
    """A CPU quantity (250m, 1, 123456789n, 5u) in millicores."""
    units = {"n": 1e-6, "u": 1e-3, "m": 1.0}
    if quantity and quantity[-1] in units:
        return float(quantity[:-1]) * units[quantity[-1]]
    return float(quantity) * 1000


def _memory(quantity: str) -> float:
    """A memory quantity (12345Ki, 64Mi, 1Gi, 1000000) in MiB."""
    binary = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    decimal = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    for suffix, factor in binary.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor / 2**20
    if quantity and quantity[-1] in decimal:
        return float(quantity[:-1]) * decimal[quantity[-1]] / 2**20
    return float(quantity) / 2**20


class Pods:
    def __init__(self, connection: Connection, reads: Reads) -> None:
        self.connection = connection
        self.namespace = connection.namespace
        self.reads = reads

    def of_release(self, release: str) -> ReleasePods:
        """The Deployment's own pods (owned by its ReplicaSets: a migration Job's pods share its labels)."""
        name = self.reads.find_deployment(release)
        deployment = self.reads.read_deployment(name)
        owners = {convert.name_of(rs) for rs in self.reads.replicasets(deployment)}
        try:
            items = self.connection.list("pods", label_selector=selector(convert.match_labels(deployment)))
        except ApiException as exc:
            raise api_error(exc, "listing pods") from exc
        pods = [
            p
            for p in items
            if any(ref.get("name") in owners for ref in p["metadata"].get("ownerReferences") or [])
        ]
        return ReleasePods(name, sorted(pods, key=lambda p: str(p["metadata"]["name"])))

    def log(
        self, pod: str, container: str, *, previous: bool, since_seconds: int | None, tail: int | None
    ) -> PodLog:
        try:
            text = self.connection.log(
                pod, container=container, previous=previous, since_seconds=since_seconds, tail_lines=tail
            )
        except ApiException as exc:
            return PodLog(pod, container, None, str(api_error(exc, f"reading the log of {pod}")))
        return PodLog(pod, container, text)

    def events(self, names: dict[str, set[str]]) -> list[Event]:
        """Every event (Normal and Warning) about the named objects (kind -> names), oldest first. Pods
        already replaced count too: a Deployment's pod is named after its ReplicaSet, a dash and five
        characters, and the events of a crashed pod matter most once it is gone."""
        replicasets = sorted(names.get("ReplicaSet", set()))
        gone = re.compile("^(" + "|".join(re.escape(rs) for rs in replicasets) + r")-[a-z0-9]{5}$")
        try:
            items = self.connection.list("events")
        except ApiException as exc:
            raise api_error(exc, "listing events") from exc
        found = []
        for event in items:
            obj = event.get("involvedObject") or {}
            kind, obj_name = obj.get("kind") or "", obj.get("name")
            named = obj_name in names.get(kind, set())
            if not named and not (kind == "Pod" and replicasets and gone.match(obj_name or "")):
                continue
            seen = (
                convert.time(event.get("lastTimestamp"))
                or convert.time(event.get("eventTime"))
                or convert.time(convert.metadata(event).get("creationTimestamp"))
            )
            source = (event.get("source") or {}).get("component") or event.get("reportingComponent") or ""
            found.append(
                Event(
                    type=event.get("type") or "Normal",
                    reason=event.get("reason") or "",
                    object=f"{kind.lower()}/{obj_name}",
                    message=(event.get("message") or "").strip(),
                    count=event.get("count") or 1,
                    last_seen=seen,
                    source=source,
                )
            )
        epoch = datetime.min.replace(tzinfo=UTC)
        return sorted(found, key=lambda e: e.last_seen or epoch)

    def readyz(self, pod: str, port: int) -> Readiness:
        """GET /readyz of the pod, through the API server's pod proxy: the answer the kubelet's probe gets,
        from inside the cluster's network, without a port-forward."""
        try:
            answer = self.connection.send(
                "GET",
                self.connection.path("pods", f"{pod}:{port}", subresource="proxy/readyz"),
                accept="*/*",
                timeout=PROBE_TIMEOUT,
            ).decode("utf-8", "replace")
        except urllib3.exceptions.HTTPError as exc:
            # The kubelet's probe gives up after its timeout too; a pod silent this long is not ready.
            why = f"no answer through the API server in {PROBE_TIMEOUT:g}s ({type(exc).__name__})"
            return Readiness(pod, port, False, False, None, why)
        except ApiException as exc:
            body: Any = None
            with contextlib.suppress(ValueError, TypeError):
                body = json.loads(exc.body or "")
            if isinstance(body, dict) and body.get("kind") != "Status":
                # The pod's own answer (503 while not ready), passed through by the proxy.
                return Readiness(pod, port, False, True, exc.status, json.dumps(body, separators=(",", ":")))
            # The API server's own refusal (RBAC, no such pod) is a Status; what sits between it and the
            # pod (a dial error, a network filter) may answer in plain text, which says more than a reason.
            if isinstance(body, dict):
                detail = str(body.get("message") or exc.reason)
            else:
                detail = str(exc.body or "").strip()[:200] or str(exc.reason)
            message = f"asking {pod}:{port}/readyz through the API server: {detail} (HTTP {exc.status})"
            return Readiness(pod, port, False, False, exc.status, message)
        return Readiness(pod, port, True, True, 200, answer.strip())

    def usage(self, pods: list[str], label_selector: str) -> list[Usage]:
        """Each container's CPU and memory, as `kubectl top pod --containers` reads them."""
        try:
            found = self.connection.list(f"pods.{METRICS_GROUP}", label_selector=label_selector)
        except ApiException as exc:
            if exc.status == 404:
                raise MetricsUnavailable(
                    f"{METRICS_GROUP} is not served by this cluster: no metrics-server is installed, so "
                    "there is no CPU or memory to show (kubectl top needs it too); "
                    "inkwell-ops status shows restarts and terminations instead",
                    status=404,
                ) from exc
            if exc.status == 503:
                raise MetricsUnavailable(
                    f"{METRICS_GROUP} is registered but does not answer (its APIService is unavailable: "
                    "is metrics-server running?)",
                    status=503,
                ) from exc
            raise api_error(exc, f"listing {METRICS_GROUP} pods") from exc
        wanted = set(pods)
        usage = []
        for item in found:
            name = item["metadata"]["name"]
            if name not in wanted:
                continue
            for container in item.get("containers") or []:
                values = container.get("usage") or {}
                usage.append(
                    Usage(
                        pod=name,
                        container=container["name"],
                        cpu_millicores=_cpu(str(values.get("cpu", "0"))),
                        memory_mib=_memory(str(values.get("memory", "0"))),
                    )
                )
        return sorted(usage, key=lambda u: (u.pod, u.container))
