"""SLO gates judged at the end of a run: p95 and p99 per request group and overall, the failure ratio
and the throughput, against loadtests/slo.toml or the command line; one verdict table, one exit code.
The live listeners' gates: delivery lag is the latency of the "WS comment.created" group, and no lost
events (`LiveCount`, summed over every locust process by loadtests/live.py)."""

from __future__ import annotations

import html
import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from loadtests.percentiles import percentile

DEFAULT_SLO_FILE = Path(__file__).with_name("slo.toml")
TOTAL = "Aggregated"


@dataclass(frozen=True)
class Limits:
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_failure_ratio: float | None = None

    def merged(self, override: Limits) -> Limits:
        """These limits, with every limit `override` sets replacing ours."""
        return Limits(
            p95_ms=override.p95_ms if override.p95_ms is not None else self.p95_ms,
            p99_ms=override.p99_ms if override.p99_ms is not None else self.p99_ms,
            max_failure_ratio=(
                override.max_failure_ratio
                if override.max_failure_ratio is not None
                else self.max_failure_ratio
            ),
        )

    @classmethod
    def parse(cls, table: Mapping[str, Any], where: str) -> Limits:
        unknown = set(table) - {"p95_ms", "p99_ms", "max_failure_ratio"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        return cls(**{key: float(value) for key, value in table.items()})


@dataclass(frozen=True)
class LiveCount:
    """What the live listeners of a run counted (loadtests/live.py `LiveTally`, summed)."""

    expected: int
    delivered: int
    resynced: int
    lost: int


LIVE = "live listeners"


@dataclass(frozen=True)
class SloConfig:
    """`total` judges all requests together, `every_group` each request group ("GET /api/tags"),
    `groups` overrides it for some; groups with fewer than `min_samples` requests get no latency verdict."""

    total: Limits = Limits()
    min_rps: float | None = None
    every_group: Limits = Limits()
    groups: Mapping[str, Limits] = field(default_factory=dict)
    min_samples: int = 20
    # Groups left out of the total's latency (they have their own limits), not of its failures or rate.
    latency_excludes: tuple[str, ...] = ()
    # Groups that are frames received, not requests (the live listeners' deliveries): left out of the
    # total altogether (its requests, rate, failures and latency), judged by their own limits.
    not_requests: tuple[str, ...] = ()
    # Comments a writer posted that some listener subscribed to the article never got (nor resynced).
    max_lost_events: int | None = None

    def for_group(self, key: str) -> Limits:
        return self.every_group.merged(self.groups.get(key, Limits()))

    @classmethod
    def load(cls, path: Path) -> SloConfig:
        data = tomllib.loads(path.read_text())
        unknown = set(data) - {"min_samples", "total", "every_group", "groups", "live"}
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
        total = dict(data.get("total", {}))
        min_rps = total.pop("min_rps", None)
        excludes = tuple(str(group) for group in total.pop("latency_excludes", ()))
        not_requests = tuple(str(group) for group in total.pop("not_requests", ()))
        live = dict(data.get("live", {}))
        if set(live) - {"max_lost_events"}:
            raise ValueError(f"{path} [live]: unknown keys {sorted(set(live) - {'max_lost_events'})}")
        max_lost = live.get("max_lost_events")
        return cls(
            total=Limits.parse(total, f"{path} [total]"),
            min_rps=float(min_rps) if min_rps is not None else None,
            every_group=Limits.parse(data.get("every_group", {}), f"{path} [every_group]"),
            groups={
                key: Limits.parse(value, f"{path} [groups.{key!r}]")
                for key, value in data.get("groups", {}).items()
            },
            min_samples=int(data.get("min_samples", cls.min_samples)),
            latency_excludes=excludes,
            not_requests=not_requests,
            max_lost_events=int(max_lost) if max_lost is not None else None,
        )

    def overridden(
        self,
        *,
        p95_ms: float | None = None,
        p99_ms: float | None = None,
        max_failure_ratio: float | None = None,
        min_rps: float | None = None,
    ) -> SloConfig:
        """Command-line limits: a latency limit applies to every group and the total, replacing the
        file's; the failure ratio and throughput limits apply to the total."""
        latency = Limits(p95_ms=p95_ms, p99_ms=p99_ms)
        return replace(
            self,
            total=self.total.merged(replace(latency, max_failure_ratio=max_failure_ratio)),
            min_rps=min_rps if min_rps is not None else self.min_rps,
            every_group=self.every_group.merged(latency),
            groups={key: limits.merged(latency) for key, limits in self.groups.items()},
        )


@dataclass(frozen=True)
class Observation:
    """What a run measured for one request group, or for all of them (group "Aggregated")."""

    group: str
    requests: int
    failures: int
    p95_ms: float
    p99_ms: float
    rps: float

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Check:
    group: str
    gate: str
    observed: float | None
    limit: float
    passed: bool | None  # None: not judged (too few samples)
    note: str = ""


@dataclass(frozen=True)
class Verdict:
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(check.passed is not False for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if check.passed is False]

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [asdict(check) for check in self.checks]}


def _latency(config: SloConfig, observation: Observation, limits: Limits) -> Iterable[Check]:
    for gate, limit, observed in (
        ("p95 ms", limits.p95_ms, observation.p95_ms),
        ("p99 ms", limits.p99_ms, observation.p99_ms),
    ):
        if limit is None:
            continue
        if observation.requests < config.min_samples:
            yield Check(
                observation.group,
                gate,
                observed if observation.requests else None,
                limit,
                None,
                f"{observation.requests} requests < min_samples {config.min_samples}",
            )
        else:
            yield Check(observation.group, gate, observed, limit, observed <= limit)


def _lost_events(config: SloConfig, live: LiveCount | None) -> Iterable[Check]:
    if config.max_lost_events is None or live is None:
        return
    limit = config.max_lost_events
    if live.expected == 0:
        # No listener ran, or no comment was posted to an article one listened to: nothing to judge.
        yield Check(LIVE, "lost events", None, limit, None, "no comment expected by a listener")
        return
    note = f"of {live.expected} expected: {live.delivered} delivered, {live.resynced} resynced"
    yield Check(LIVE, "lost events", live.lost, limit, live.lost <= limit, note)


def evaluate(
    config: SloConfig, total: Observation, groups: Iterable[Observation], live: LiveCount | None = None
) -> Verdict:
    checks: list[Check] = []
    if config.min_rps is not None:
        checks.append(Check(TOTAL, "min rps", total.rps, config.min_rps, total.rps >= config.min_rps))
    if config.total.max_failure_ratio is not None:
        limit = config.total.max_failure_ratio
        if total.requests:
            checks.append(
                Check(TOTAL, "failure ratio", total.failure_ratio, limit, total.failure_ratio <= limit)
            )
        else:
            checks.append(Check(TOTAL, "failure ratio", None, limit, False, "no requests at all"))
    for check in _latency(config, total, config.total):
        left_out = (*config.latency_excludes, *config.not_requests)
        note = f"without {', '.join(left_out)}" if left_out else ""
        checks.append(replace(check, note=check.note or note))
    for observation in sorted(groups, key=lambda o: o.group):
        limits = config.for_group(observation.group)
        if limits.max_failure_ratio is not None:
            ratio = observation.failure_ratio
            checks.append(
                Check(
                    observation.group,
                    "failure ratio",
                    ratio,
                    limits.max_failure_ratio,
                    ratio <= limits.max_failure_ratio,
                )
            )
        checks.extend(_latency(config, observation, limits))
    checks.extend(_lost_events(config, live))
    return Verdict(tuple(checks))


def observations(
    stats: Any, latency_excludes: Iterable[str] = (), not_requests: Iterable[str] = ()
) -> tuple[Observation, list[Observation]]:
    """The total and each request group ("METHOD name") from locust's RequestStats; the total's
    percentiles leave out the groups in `latency_excludes`, and the total leaves out the groups in
    `not_requests` altogether (frames a listener received are no request)."""

    def of(group: str, entry: Any) -> Observation:
        return Observation(
            group=group,
            requests=entry.num_requests,
            failures=entry.num_failures,
            p95_ms=float(entry.get_response_time_percentile(0.95) or 0),
            p99_ms=float(entry.get_response_time_percentile(0.99) or 0),
            rps=float(entry.total_rps),
        )

    groups = {f"{entry.method} {entry.name}": entry for entry in stats.entries.values()}
    total = of(TOTAL, stats.total)
    frames = [groups[key] for key in not_requests if key in groups]
    if frames:
        requests = total.requests - sum(entry.num_requests for entry in frames)
        total = replace(
            total,
            requests=requests,
            failures=total.failures - sum(entry.num_failures for entry in frames),
            # One rate over the run for all: the total's, for the requests that remain.
            rps=total.rps * requests / total.requests if total.requests else 0.0,
        )
    excluded = {key for key in (*latency_excludes, *not_requests) if key in groups}
    if excluded:
        histogram: dict[int, int] = {}
        for key, entry in groups.items():
            if key not in excluded:
                for ms, count in entry.response_times.items():
                    histogram[ms] = histogram.get(ms, 0) + count
        total = replace(total, p95_ms=percentile(histogram, 0.95), p99_ms=percentile(histogram, 0.99))
    return total, [of(key, entry) for key, entry in groups.items()]


def _number(value: float | None, gate: str) -> str:
    if value is None:
        return "-"
    if gate == "failure ratio":
        return f"{value:.2%}"
    if gate == "lost events":
        return f"{value:,.0f}"
    return f"{value:,.1f}" if gate == "min rps" else f"{value:,.0f}"


def print_verdict(verdict: Verdict, console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    table = Table(title="SLO gates", title_justify="left")
    for column, justify in (("group", "left"), ("gate", "left"), ("observed", "right"), ("limit", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    table.add_column("verdict")
    for check in verdict.checks:
        mark = {True: "[green]pass[/]", False: "[bold red]FAIL[/]", None: "[yellow]skipped[/]"}[check.passed]
        limit = ("≥ " if check.gate == "min rps" else "≤ ") + _number(check.limit, check.gate)
        table.add_row(
            escape(check.group),
            check.gate,
            _number(check.observed, check.gate),
            limit,
            f"{mark} {check.note}".rstrip(),
        )
    console.print(table)
    failed = verdict.failed
    if failed:
        console.print(f"[bold red]SLO verdict: FAIL[/] ({len(failed)} of {len(verdict.checks)} gates failed)")
    else:
        console.print(f"[bold green]SLO verdict: PASS[/] ({len(verdict.checks)} gates)")


def write_report(path: Path, verdict: Verdict, total: Observation, extra: Mapping[str, Any]) -> None:
    """The verdict and the totals as JSON, next to locust's CSV files, for scripts and tests."""
    body = {**verdict.to_json(), "total": asdict(total), **extra}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2) + "\n")


def add_to_html_report(path: Path, verdict: Verdict, console: Console) -> None:
    """Puts the verdict on top of the HTML report locust wrote at `path` (see `with_verdict`)."""
    path.write_text(with_verdict(path.read_text(encoding="utf-8"), verdict, console), encoding="utf-8")


def with_verdict(report: str, verdict: Verdict, console: Console, *, so_far: bool = False) -> str:
    """locust's HTML report with the verdict, and the tables `console` recorded (the stages, the gates)
    as the terminal showed them, at the top, above its own charts: the report is what people open
    first, and it said nothing of the gates. `so_far`: the run is still going (the web UI's "Download
    report" during a run), so the verdict is of what has run until now. locust's page is an app
    rendered into its root element, so a section before that element is left alone."""
    outcome = "PASS" if verdict.passed else "FAIL"
    colour = "#1a7f37" if verdict.passed else "#cf222e"
    failed = verdict.failed
    summary = (
        f"{len(failed)} of {len(verdict.checks)} gates failed" if failed else f"{len(verdict.checks)} gates"
    )
    if so_far:
        summary += "; the run is still going, so this judges the requests made until now"
    tables = console.export_html(
        inline_styles=True,
        code_format='<pre style="font-family:Menlo,Consolas,monospace;font-size:12px;line-height:1.3;'
        'overflow-x:auto">{code}</pre>',
    )
    title = "SLO verdict so far" if so_far else "SLO verdict"
    section = (
        '<section id="inkwell-slo-verdict" style="font-family:sans-serif;margin:16px;padding:12px 16px;'
        f'border:2px solid {colour};border-radius:6px">'
        f'<h2 style="margin:0 0 8px;color:{colour}">{title}: {outcome}</h2>'
        f'<p style="margin:0 0 8px">{html.escape(summary)} (loadtests/slo.toml and the --gate-* options)</p>'
        f"{tables}</section>"
    )
    head, body, rest = report.partition("<body>")
    if not body:
        raise ValueError("not locust's HTML report: no <body>")
    return head + body + section + rest
