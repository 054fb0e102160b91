"""`python -m dashboards.preview`: draws Inkwell's four dashboards from a live Prometheus into PNGs, with
the dashboards' own queries, so their data can be reviewed without a Grafana.

With `--prometheus URL` it reads that Prometheus (staging's, say) for the release `--namespace` and
`--release` name (found by itself when the Prometheus has only one); without, it starts Inkwell and a
Prometheus with the generated rules on this machine, sends traffic for `--traffic-seconds`, then draws.

A picture that would be empty is not drawn: when the Prometheus cannot be reached, has no Inkwell
series, or none for the release asked for, it says so (naming the releases it does have) and exits 1;
a dashboard none of whose panels has data is left out with the reason (the Kubernetes one needs
kube-state-metrics and cAdvisor, which a cluster's Prometheus has and the staging stack's has not).
Axes are in the units a person reads (%, req/s, ms); thresholds are drawn, and stat values coloured,
in their steps' colours, as Grafana colours them.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import launch.prometheus
from dashboards import local
from dashboards.config import CONFIG
from dashboards.generate import FILES, ROOT

# matplotlib's stubs take no datetimes as x values, which it plots (as dates): axes are typed loosely.
Axes = Any
BOARDS = ("overview", "dependencies", "business", "kubernetes")
# Grafana's named colours, as its default theme draws them.
COLOURS = {"green": "#56a64b", "red": "#e02f44", "orange": "#ff9830", "yellow": "#f2cc0c", "blue": "#3274d9"}
# Grafana unit -> (factor, the unit shown): ratios as %, seconds as ms, rates per second.
UNITS: dict[str, tuple[float, str]] = {
    "percentunit": (100.0, "%"),
    "s": (1000.0, "ms"),
    "reqps": (1.0, "req/s"),
    "ops": (1.0, "ops/s"),
    "opm": (1.0, "ops/min"),
    "bytes": (1 / 2**20, "MiB"),
    "x": (1.0, "\N{MULTIPLICATION SIGN}"),  # a burn rate: times the rate that spends the budget exactly
    "short": (1.0, ""),
}
# Series the Kubernetes dashboard reads that only a cluster's Prometheus has.
CLUSTER_SERIES = "kube_deployment_status_replicas"


class NoData(Exception):
    """Why a picture would be empty: printed instead of drawing it."""


@dataclass
class Drawn:
    board: str
    path: Path | None
    series: int
    empty_panels: list[str] = field(default_factory=list)
    reason: str = ""
    # Each drawn panel's axis unit, and each stat's colour by the thresholds: what a reviewer reads.
    units: dict[str, str] = field(default_factory=dict)
    colours: dict[str, str] = field(default_factory=dict)


def expand(expr: str, variables: dict[str, str]) -> str:
    """Grafana's variable interpolation, for the variables our dashboards use."""
    return re.sub(r"\$(\w+)|\$\{(\w+)\}", lambda m: variables.get(m[1] or m[2], m[0]), expr)


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel.get("type") in {"stat", "timeseries"}]


def legend(template: str, metric: dict[str, str]) -> str:
    if template in {"", "__auto"}:
        return ", ".join(f"{k}={v}" for k, v in metric.items()) or "value"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m[1], ""), template)


def unit_of(panel: dict[str, Any]) -> tuple[float, str]:
    unit = str(panel["fieldConfig"]["defaults"].get("unit", ""))
    return UNITS.get(unit, (1.0, unit))


def thresholds(panel: dict[str, Any], factor: float) -> list[tuple[float, str]]:
    """The panel's threshold steps in the units shown, lowest first; the base step is -inf."""
    steps = panel["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])
    return [
        (
            -math.inf if step["value"] is None else step["value"] * factor,
            COLOURS.get(step["color"], step["color"]),
        )
        for step in steps
    ]


def colour_at(value: float, steps: list[tuple[float, str]]) -> str:
    """Grafana's rule: the colour of the highest step the value reaches."""
    colour = "black"
    for start, step_colour in steps:
        if value >= start:
            colour = step_colour
    return colour


def releases(url: str, minutes: int) -> list[tuple[str, str, str]]:
    """(namespace, release, service) of every Inkwell release the Prometheus saw in the last `minutes`,
    from the series the dashboards' own variables are chosen from."""
    try:
        found = local.query(
            url,
            f"group by (namespace, release, service) (last_over_time(inkwell_build_info{{{CONFIG.selector}}}[{minutes}m]))",
        )
    except httpx.HTTPError as error:
        raise NoData(f"cannot query Prometheus at {url}: {error}") from None
    return sorted(
        (s["metric"].get("namespace", ""), s["metric"].get("release", ""), s["metric"].get("service", ""))
        for s in found
    )


def choose(url: str, namespace: str | None, release: str | None, minutes: int) -> tuple[str, str, str]:
    """The release to draw: the one asked for, or the only one there is; else why there is none."""
    known = releases(url, minutes)
    listed = ", ".join(f"--namespace {n} --release {r}" for n, r, _ in known)
    if not known:
        raise NoData(
            f"Prometheus at {url} has no Inkwell series (inkwell_build_info{{{CONFIG.selector}}}) in the"
            f" last {minutes} minutes: is it scraping the service (the chart's ServiceMonitor, the staging"
            " stack's Prometheus)?"
        )
    matching = [r for r in known if (namespace in (None, r[0])) and (release in (None, r[1]))]
    if not matching:
        asked = f"namespace={namespace!r} release={release!r}".replace("None", "any")
        raise NoData(f"Prometheus at {url} has no Inkwell release with {asked}; it has: {listed}")
    if len(matching) > 1:
        raise NoData(f"Prometheus at {url} has several Inkwell releases, name one: {listed}")
    return matching[0]


def _timeseries(
    axis: Axes, panel: dict[str, Any], lines: list[tuple[str, list[datetime], list[float]]]
) -> None:
    factor, shown = unit_of(panel)
    for label, times, values in lines:
        axis.plot(times, [v * factor for v in values], label=label, linewidth=1.2)
    # Each threshold a dashed line in its step's colour. Not tinted bands: over a series at zero
    # they painted a whole panel red, which reads as trouble where there is none.
    for start, colour in thresholds(panel, factor)[1:]:
        axis.axhline(start, color=colour, linestyle="--", linewidth=1.2)
    if panel["fieldConfig"]["defaults"].get("min") == 0:
        axis.set_ylim(bottom=0)
    axis.set_ylabel(shown, fontsize=8)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=6, loc="upper left")


def _stat(axis: Axes, panel: dict[str, Any], lines: list[tuple[str, list[datetime], list[float]]]) -> str:
    factor, shown = unit_of(panel)
    steps = thresholds(panel, factor)
    _label, times, values = lines[0]
    last = values[-1] * factor
    decimals = 3 if shown == "%" else (0 if float(last).is_integer() else 2)
    suffix = shown if shown in {"%", "\N{MULTIPLICATION SIGN}", ""} else f" {shown}"
    axis.text(
        0.5, 0.55, f"{last:,.{decimals}f}{suffix}", ha="center", va="center", fontsize=22,
        color=colour_at(last, steps), transform=axis.transAxes, fontweight="bold",
    )  # fmt: skip
    axis.plot(times, [v * factor for v in values], alpha=0.3, color=colour_at(last, steps))
    axis.set_yticks([])
    return colour_at(last, steps)


def render_board(
    url: str,
    board: str,
    output: Path,
    *,
    namespace: str,
    release: str,
    workload: str = "",
    minutes: int = 15,
    rate_interval: str = "1m",
) -> Drawn:
    """Draws every stat and time series panel of dashboard `board` over the last `minutes` into
    `output`, unless none has data: then nothing is written and the result says why."""
    dashboard = json.loads((FILES / "dashboards" / f"inkwell-{board}.json").read_text())
    variables = {
        "namespace": namespace, "release": release, "route": ".*", "workload": workload,
        "__rate_interval": rate_interval,
    }  # fmt: skip
    end = time.time()
    start = end - minutes * 60
    step = max(1, minutes * 60 // 240)
    shown = panels(dashboard)
    data: list[list[tuple[str, list[datetime], list[float]]]] = []
    for panel in shown:
        lines = []
        for target in panel["targets"]:
            for series in local.query(
                url, expand(target["expr"], variables), start=start, end=end, step=step
            ):
                times = [datetime.fromtimestamp(float(t), UTC) for t, _ in series["values"]]
                values = [float(v) for _, v in series["values"]]
                if all(math.isnan(v) for v in values):  # e.g. a quantile of no observations
                    continue
                lines.append((legend(target.get("legendFormat", ""), series["metric"]), times, values))
        data.append(lines)
    empty = [panel["title"] for panel, lines in zip(shown, data, strict=True) if not lines]
    count = sum(len(lines) for lines in data)
    if not count:
        reason = f"no panel's query returned data for {namespace}/{release} in the last {minutes} minutes"
        if board == "kubernetes" and not local.query(url, f"count({CLUSTER_SERIES})"):
            reason = (
                "its series come from kube-state-metrics and cAdvisor, which this Prometheus does not"
                f" scrape ({CLUSTER_SERIES} is absent): draw it from a cluster's Prometheus"
            )
        return Drawn(board, None, 0, empty, reason)
    columns = 3
    rows = math.ceil(len(shown) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 3.4 * rows), squeeze=False)
    result = Drawn(board, output, count, empty)
    for axis, panel, lines in zip(axes.flat, shown, data, strict=False):
        axis.set_title(panel["title"], fontsize=10, loc="left")
        axis.tick_params(labelsize=7)
        if not lines:
            axis.text(0.5, 0.5, "no data", ha="center", va="center", color="grey", transform=axis.transAxes)
            axis.set_xticks([])
            axis.set_yticks([])
        elif panel["type"] == "stat":
            result.colours[panel["title"]] = _stat(axis, panel, lines)
            result.units[panel["title"]] = unit_of(panel)[1]
        else:
            _timeseries(axis, panel, lines)
            result.units[panel["title"]] = unit_of(panel)[1]
    for axis in list(axes.flat)[len(shown) :]:
        axis.axis("off")
    figure.suptitle(f"{dashboard['title']}: {release} in {namespace}, last {minutes} minutes", fontsize=12)
    figure.tight_layout(rect=(0, 0, 1, 0.97))  # room for the title above the first row
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=90)
    plt.close(figure)
    return result


def render(
    url: str,
    output_dir: Path,
    *,
    namespace: str | None = None,
    release: str | None = None,
    boards: Sequence[str] = BOARDS,
    minutes: int = 15,
    rate_interval: str = "1m",
) -> list[Drawn]:
    """Every dashboard in `boards` for the release chosen (see choose()) into output_dir/<board>.png.
    Raises NoData when there is no release to draw at all."""
    namespace, release, workload = choose(url, namespace, release, minutes)
    return [
        render_board(
            url,
            board,
            output_dir / f"inkwell-{board}.png",
            namespace=namespace,
            release=release,
            workload=workload,
            minutes=minutes,
            rate_interval=rate_interval,
        )
        for board in boards
    ]


def report(drawn: list[Drawn], asked: Sequence[str] | None) -> int:
    """Prints what was drawn and why anything was not; 1 when a dashboard asked for by name, or any but
    the Kubernetes one (which needs a cluster's Prometheus), could not be drawn."""
    failed = False
    for result in drawn:
        if result.path is not None:
            note = f" (no data: {', '.join(result.empty_panels)})" if result.empty_panels else ""
            sys.stdout.write(f"drew {result.path} ({result.series} series){note}\n")
            continue
        required = result.board in (asked or ()) or (not asked and result.board != "kubernetes")
        failed = failed or required
        sys.stderr.write(
            f"{'not drawn' if required else 'skipped'}: inkwell-{result.board}: {result.reason}\n"
        )
    return 1 if failed or not any(r.path for r in drawn) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.preview", description=__doc__)
    parser.add_argument("--prometheus", help="a live Prometheus; default: start Inkwell and Prometheus here")
    parser.add_argument("--namespace", help="the release's namespace (default: the only one there is)")
    parser.add_argument("--release", help="the Helm release (default: the only one there is)")
    parser.add_argument(
        "--dashboard",
        action="append",
        choices=BOARDS,
        help=f"draw only these (repeatable; default: {', '.join(BOARDS)})",
    )
    parser.add_argument("--minutes", type=int, default=15, help="time range drawn")
    parser.add_argument("--traffic-seconds", type=float, default=90, help="traffic sent to the local stack")
    parser.add_argument("--output-dir", type=Path, default=ROOT / "var" / "dashboards-preview")
    args = parser.parse_args(argv)
    boards = args.dashboard or BOARDS
    try:
        if args.prometheus:
            drawn = render(
                args.prometheus, args.output_dir, namespace=args.namespace, release=args.release,
                boards=boards, minutes=args.minutes,
            )  # fmt: skip
        else:
            namespace, release = args.namespace or "local", args.release or "inkwell"
            labels = {"app": "inkwell", "namespace": namespace, "release": release}
            with (
                tempfile.TemporaryDirectory() as rules,
                local.inkwell() as service,
                local.prometheus(
                    targets=[service.removeprefix("http://")],
                    labels=labels,
                    rule_files=launch.prometheus.local_rule_files(Path(rules)),
                ) as prometheus,
            ):
                local.traffic(service, seconds=args.traffic_seconds)
                time.sleep(3)  # one more scrape and rule evaluation
                minutes = max(1, math.ceil(args.traffic_seconds / 60) + 1)
                # A short window: the stack is only minutes old, a 1m rate would still be ramping up.
                drawn = render(
                    prometheus, args.output_dir, namespace=namespace, release=release, boards=boards,
                    minutes=minutes, rate_interval="15s",
                )  # fmt: skip
    except NoData as reason:
        sys.stderr.write(f"nothing drawn: {reason}\n")
        return 1
    return report(drawn, args.dashboard)


if __name__ == "__main__":
    sys.exit(main())
