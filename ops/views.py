"""The human shape of each command's result: rich tables an operator reads at a glance (the machine shape
is the same data as JSON or YAML, see output.py)."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.table import Table

from ops.diagnose import Finding
from ops.model import DeployedRelease, ReleaseState, Revision
from ops.output import age
from ops.results import MigrationResult
from ops.slo import SloReport
from ops.smoke import SmokeReport


def _ago(when: datetime | None, now: datetime) -> str:
    return age((now - when).total_seconds()) if when is not None else "-"


def _table(title: str, *columns: str) -> Table:
    table = Table(
        title=title or None,
        title_justify="left",
        title_style="bold",
        header_style="bold",
        box=None,
        pad_edge=False,
    )
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _pct(value: float | None, digits: int = 3) -> str:
    return "no data" if value is None else f"{value * 100:.{digits}f}%"


def _seconds(value: float | None) -> str:
    return "no data" if value is None else f"{value * 1000:.0f} ms"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def findings(console: Console, items: list[Finding]) -> None:
    if not items:
        console.print("No problems found.", style="green")
        return
    table = _table(f"{len(items)} problem(s)", "PROBLEM", "OBJECT", "DETAIL", "ADVICE")
    for f in items:
        table.add_row(f"[red]{f.problem}[/]", f.object, f.detail, f.advice)
    console.print(table)


def status(console: Console, state: ReleaseState, problems: list[Finding]) -> None:
    d, now = state.deployment, state.observed_at
    images = ", ".join(f"{name}={image}" for name, image in d.images.items())
    verdict = "[green]healthy[/]" if not problems else "[yellow]degraded[/]"
    console.print(
        f"[bold]{state.release}[/] in {state.namespace}: deployment/{d.name} revision {d.revision} ({images}), {verdict}"
    )
    replicas = _table("Replicas", "DESIRED", "CURRENT", "UPDATED", "READY", "AVAILABLE", "ROLLOUT")
    progressing = d.condition("Progressing")
    replicas.add_row(
        str(d.desired),
        str(d.replicas),
        str(d.updated),
        str(d.ready),
        str(d.available),
        ("paused" if d.paused else (progressing.reason if progressing else "-")),
    )
    console.print(replicas)
    pods = _table("Pods", "NAME", "REVISION", "PHASE", "READY", "RESTARTS", "AGE", "NODE", "LAST TERMINATION")
    revision_of = {r.template_hash: str(r.revision) for r in state.revisions}
    for p in state.pods:
        ready = f"{sum(c.ready for c in p.containers)}/{len(p.containers)}" if p.containers else "0/0"
        waiting = next((c.reason for c in p.containers if c.reason and c.state == "waiting"), "")
        phase = f"{p.phase} ({waiting})" if waiting else p.phase
        pods.add_row(
            p.name,
            revision_of.get(p.template_hash, "?"),
            ("Terminating" if p.deleting else phase),
            ready,
            str(p.restarts),
            _ago(p.created, now),
            p.node or "-",
            p.last_termination_reason or "-",
        )
    console.print(pods)
    if state.hpa is not None:
        h = state.hpa
        hpa = _table(f"HorizontalPodAutoscaler {h.name}", "MIN", "MAX", "CURRENT", "DESIRED", "METRICS")
        metrics = "; ".join(f"{m.name} {m.current}/{m.target}" for m in h.metrics) or "-"
        hpa.add_row(
            str(h.min_replicas),
            str(h.max_replicas),
            str(h.current_replicas),
            str(h.desired_replicas),
            metrics,
        )
        console.print(hpa)
    if state.pdbs:
        pdb = _table("PodDisruptionBudget", "NAME", "ALLOWED DISRUPTIONS", "HEALTHY", "REQUIRED")
        for b in state.pdbs:
            pdb.add_row(b.name, str(b.disruptions_allowed), str(b.current_healthy), str(b.desired_healthy))
        console.print(pdb)
    traffic = _table("Traffic", "INGRESS", "HOSTS", "SERVICE", "READY ENDPOINTS")
    endpoints = {s.name: s for s in state.services}
    for i in state.ingresses:
        for name in i.services:
            s = endpoints.get(name)
            traffic.add_row(
                i.name, ", ".join(i.hosts) or "*", name, str(s.ready_endpoints) if s else "missing"
            )
    routed = {name for i in state.ingresses for name in i.services}
    for s in state.services:
        if s.name not in routed:
            traffic.add_row("-", "-", s.name, str(s.ready_endpoints))
    console.print(traffic)
    if state.warnings:
        events = _table("Recent warnings", "LAST SEEN", "OBJECT", "REASON", "COUNT", "MESSAGE")
        for e in state.warnings:
            events.add_row(
                _ago(e.last_seen, now), f"{e.kind.lower()}/{e.name}", e.reason, str(e.count), e.message
            )
        console.print(events)
    findings(console, problems)


def revision_state(r: Revision) -> str:
    """How a revision's rollouts went, as inkwell-ops recorded them: failed, rolled back, complete."""
    states = []
    if r.outcome == "failed":
        states.append(f"failed ({r.outcome_reason})" if r.outcome_reason else "failed")
    elif r.outcome == "complete":
        states.append("complete")
    if r.rolled_back_at is not None:
        states.append("rolled back")
    return ", ".join(states) or "-"


def history(console: Console, revisions: list[Revision], now: datetime) -> None:
    table = _table("Revisions", "REVISION", "REPLICASET", "IMAGES", "CREATED", "CURRENT SINCE", "PODS",
                   "ROLLOUT", "")  # fmt: skip
    for r in revisions:
        rolled_back = f" ({_ago(r.rolled_back_at, now)} ago)" if r.rolled_back_at else ""
        state = revision_state(r) + rolled_back
        style = "red" if not r.good else ""
        table.add_row(
            str(r.revision),
            r.replicaset,
            ", ".join(r.images.values()),
            _ago(r.created, now),
            _ago(r.current_since, now),
            f"{r.ready}/{r.replicas}",
            f"[{style}]{state}[/]" if style else state,
            "[bold]current[/]" if r.current else "",
        )
    console.print(table)


def migration(console: Console, result: MigrationResult) -> None:
    for pod, log in result.logs.items():
        console.rule(f"log of {pod}")
        console.print(log.rstrip() or "(empty)", markup=False, highlight=False)
    verdict = "[green]succeeded[/]" if result.succeeded else f"[red]failed[/]: {result.message}"
    cleanup = "job and pods deleted" if result.cleaned_up else "job left in place"
    console.print(f"migration job/{result.job} {verdict} ({cleanup})")


def smoke(console: Console, report: SmokeReport) -> None:
    table = _table(f"Smoke test of {report.url} (internal endpoints: {report.internal.value})",
                   "STEP", "REQUEST", "STATUS", "EXPECTED", "LATENCY", "RESULT")  # fmt: skip
    for s in report.steps:
        latency = "-" if s.latency_ms is None else f"{s.latency_ms:.0f} ms"
        result = "[green]ok[/]" if s.ok else f"[red]FAIL[/] {s.detail}"
        table.add_row(s.name, f"{s.method} {s.path}", str(s.status or "-"), s.expected, latency, result)
    console.print(table)
    failed = sum(not s.ok for s in report.steps)
    console.print("[green]all steps passed[/]" if not failed else f"[red]{failed} step(s) failed[/]")


def slo(console: Console, r: SloReport) -> None:
    console.print(f"[bold]{r.release}[/] in {r.namespace}, SLO window {r.window}")
    table = _table("Objectives", "SLO", "TARGET", f"MEASURED ({r.window})", "ERROR BUDGET LEFT")
    table.add_row("availability (non-5xx)", _pct(r.availability_target, 1), _pct(r.availability),
                  _pct(r.availability_budget_left, 1))  # fmt: skip
    table.add_row(f"latency (< {r.latency_threshold_seconds:g} s)", _pct(r.latency_target, 1), _pct(r.latency_sli),
                  _pct(r.latency_budget_left, 1))  # fmt: skip
    console.print(table)
    rps = "no data" if r.requests_per_second is None else f"{r.requests_per_second:.2f}"
    console.print(
        f"requests/s (5m) {rps}   p50 {_seconds(r.p50_seconds)}   p95 {_seconds(r.p95_seconds)}   "
        f"p99 {_seconds(r.p99_seconds)}"
    )
    # Its own line: as the table's title it would wrap at the narrow table's width.
    console.print("Burn rate (1x spends the budget exactly over the SLO window)", style="bold")
    burn = _table("", "WINDOW", "AVAILABILITY", "LATENCY")
    for window, rates in r.burn_rates.items():
        burn.add_row(window, _rate(rates["availability"]), _rate(rates["latency"]))
    console.print(burn)
    alerts = _table("Multi-window alerts", "SLO", "WINDOWS", "THRESHOLD", "ACTION", "STATE")
    states = {"firing": "[red]FIRING[/]", "unknown": "[yellow]unknown (no data)[/]", "ok": "[green]ok[/]"}
    for a in r.alerts:
        alerts.add_row(a.slo, f"{a.long}/{a.short}", f"{a.factor:g}x", a.action, states[a.state])
    console.print(alerts)


def releases(console: Console, items: list[DeployedRelease], now: datetime, *, namespaces: bool) -> None:
    if not items:
        console.print("No Inkwell releases found.")
        return
    columns = ["RELEASE", "DEPLOYMENT", "CHART", "HELM REVISION", "IMAGE", "READY", "UP-TO-DATE", "AGE"]
    table = _table("", *(["NAMESPACE", *columns] if namespaces else columns))
    for r in items:
        helm = "-" if r.helm_revision is None else str(r.helm_revision)
        if r.helm_release is None:
            helm = "not Helm"
        row = [
            r.release,
            r.deployment,
            r.chart,
            helm,
            ", ".join(r.images.values()),
            f"{r.ready}/{r.desired}",
            str(r.updated),
            _ago(r.created, now),
        ]
        table.add_row(*([r.namespace, *row] if namespaces else row))
    console.print(table)
