"""The runbooks' look inside a release, as the inkwell-ops ServiceAccount may: `logs` of every pod (the
previous container's with --previous), `events` of the release's objects, `readyz` asked of each pod from
inside the cluster, and `top` where metrics.k8s.io exists. What each does and how it is shown are both
here, apart from ops.actions and ops.views, because nothing else shares them."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Table

from ops.actions import choose_container
from ops.kube import Cluster
from ops.kube.pods import DEFAULT_PORT, Event, PodLog, Pods, Readiness, Usage
from ops.kube.reads import selector
from ops.output import age
from ops.results import BadOption

DURATION = re.compile(r"^(\d+)([smhd])$")


def seconds(duration: str, option: str) -> int:
    """`30s`, `15m`, `2h`, `1d` in seconds, as kubectl's --since takes them."""
    found = DURATION.match(duration.strip())
    if found is None:
        raise BadOption(option, f"{duration!r} is not a duration like 30s, 15m, 2h or 1d")
    return int(found.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[found.group(2)]


def _pods(cluster: Cluster) -> Pods:
    return Pods(cluster.connection, cluster.reads)


@dataclass(frozen=True)
class Logs:
    deployment: str
    previous: bool
    logs: list[PodLog]

    @property
    def ok(self) -> bool:
        return any(log.text is not None for log in self.logs)


def logs(
    cluster: Cluster,
    *,
    release: str,
    container: str | None = None,
    previous: bool = False,
    since_seconds: int | None = None,
    tail: int | None = None,
) -> Logs:
    """Every pod's log, each read on its own, so one pod without a log (never restarted, for --previous)
    does not hide the others'."""
    pods = _pods(cluster)
    found = pods.of_release(release)
    chosen = choose_container(cluster.reads.deployment(found.deployment).images, container)
    read = [
        pods.log(p["metadata"]["name"], chosen, previous=previous, since_seconds=since_seconds, tail=tail)
        for p in found.pods
    ]
    return Logs(found.deployment, previous, read)


def events(
    cluster: Cluster, *, release: str, since_seconds: int = 3600, warnings_only: bool = False
) -> list[Event]:
    """The events of the release's Deployment, ReplicaSets, pods and HPA (scheduling, pulls, probes,
    kills, scaling), newer than `since_seconds`: what `kubectl describe` shows at the bottom, for all of them."""
    window = timedelta(seconds=since_seconds)
    reads = cluster.reads
    found = _pods(cluster).of_release(release)
    names: dict[str, set[str]] = {
        "Deployment": {found.deployment},
        "ReplicaSet": {r.replicaset for r in reads.revisions(found.deployment)},
        "Pod": {p["metadata"]["name"] for p in found.pods},
    }
    hpa = reads.hpa_for(found.deployment)
    if hpa is not None:
        names["HorizontalPodAutoscaler"] = {hpa.name}
    now = datetime.now(UTC)
    return [
        e
        for e in _pods(cluster).events(names)
        if (e.last_seen is None or now - e.last_seen <= window) and (e.type == "Warning" or not warnings_only)
    ]


def readyz(cluster: Cluster, *, release: str) -> list[Readiness]:
    """Each pod's /readyz through the API server's pod proxy, on the container port named http."""
    pods = _pods(cluster)
    found = pods.of_release(release)
    asked = []
    for pod in found.pods:
        port = next(
            (
                p["containerPort"]
                for c in pod["spec"]["containers"]
                for p in c.get("ports") or []
                if p.get("name") == "http"
            ),
            DEFAULT_PORT,
        )
        asked.append((str(pod["metadata"]["name"]), int(port)))
    # All at once: a pod that does not answer costs its timeout, not one per pod after it.
    with ThreadPoolExecutor(max_workers=min(8, len(asked) or 1)) as pool:
        return list(pool.map(lambda target: pods.readyz(*target), asked))


def top(cluster: Cluster, *, release: str) -> list[Usage]:
    pods = _pods(cluster)
    found = pods.of_release(release)
    labels = cluster.reads.deployment(found.deployment).selector
    return pods.usage([p["metadata"]["name"] for p in found.pods], selector(labels))


# --- how they are shown --------------------------------------------------------------------------------


def show_logs(console: Console, result: Logs) -> None:
    """Each line prefixed with its pod, as `kubectl logs --prefix`; a pod without a log says why."""
    for log in result.logs:
        if log.text is None:
            console.print(f"[{log.pod}] (no log: {log.error})", markup=False, highlight=False, soft_wrap=True)
            continue
        for line in log.text.splitlines():
            console.print(f"[{log.pod}] {line}", markup=False, highlight=False, soft_wrap=True)


def _table(*columns: str) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def show_events(console: Console, found: list[Event]) -> None:
    if not found:
        console.print("No events in the window.")
        return
    table = _table("LAST SEEN", "TYPE", "OBJECT", "REASON", "COUNT", "FROM", "MESSAGE")
    now = datetime.now(UTC)
    for e in found:
        when = age((now - e.last_seen).total_seconds()) if e.last_seen else "-"
        kind = f"[yellow]{e.type}[/]" if e.type == "Warning" else e.type
        table.add_row(when, kind, e.object, e.reason, str(e.count), e.source or "-", e.message)
    console.print(table)


def show_readyz(console: Console, found: list[Readiness]) -> None:
    table = _table("POD", "PORT", "READY", "STATUS", "ANSWER")
    for r in found:
        ready = "[green]yes[/]" if r.ready else ("[red]no[/]" if r.reached else "[red]unreachable[/]")
        table.add_row(r.pod, str(r.port), ready, str(r.status or "-"), r.answer)
    console.print(table)


def show_top(console: Console, found: list[Usage]) -> None:
    table = _table("POD", "CONTAINER", "CPU", "MEMORY")
    for u in found:
        table.add_row(u.pod, u.container, f"{u.cpu_millicores:.0f}m", f"{u.memory_mib:.0f}Mi")
    console.print(table)
