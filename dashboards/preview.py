"""`python -m dashboards.preview`: draws the service overview's panels from a live Prometheus into a
PNG, with the dashboard's own queries, so its data can be reviewed without a Grafana.

With `--prometheus URL` it reads that Prometheus (staging's, say); without, it starts Inkwell and a
Prometheus with the generated rules on this machine, sends traffic for `--traffic-seconds`, then draws.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import launch.prometheus
from dashboards import local
from dashboards.generate import FILES, ROOT

OVERVIEW = FILES / "dashboards" / "inkwell-overview.json"


def expand(expr: str, variables: dict[str, str]) -> str:
    """Grafana's variable interpolation, for the variables our dashboards use."""
    return re.sub(r"\$(\w+)|\$\{(\w+)\}", lambda m: variables.get(m[1] or m[2], m[0]), expr)


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel.get("type") in {"stat", "timeseries"}]


def legend(template: str, metric: dict[str, str]) -> str:
    if template in {"", "__auto"}:
        return ", ".join(f"{k}={v}" for k, v in metric.items()) or "value"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m[1], ""), template)


def render(
    url: str, output: Path, *, namespace: str, release: str, minutes: int = 15, rate_interval: str = "1m"
) -> int:
    """Draws every panel of the overview over the last `minutes`; returns how many series were drawn."""
    dashboard = json.loads(OVERVIEW.read_text())
    variables = {"namespace": namespace, "release": release, "route": ".*", "__rate_interval": rate_interval}
    end = time.time()
    start = end - minutes * 60
    step = max(1, minutes * 60 // 240)
    shown = panels(dashboard)
    columns = 3
    rows = math.ceil(len(shown) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 3.4 * rows), squeeze=False)
    drawn = 0
    for axis, panel in zip(axes.flat, shown, strict=False):
        unit = panel["fieldConfig"]["defaults"].get("unit", "")
        axis.set_title(panel["title"], fontsize=10, loc="left")
        for target in panel["targets"]:
            expr = expand(target["expr"], variables)
            for series in local.query(url, expr, start=start, end=end, step=step):
                times = [datetime.fromtimestamp(float(t), UTC) for t, _ in series["values"]]
                values = [float(v) for _, v in series["values"]]
                if panel["type"] == "stat":
                    last = values[-1] if values else math.nan
                    text = f"{last:.3%}" if unit == "percentunit" else f"{last:.2f}{unit}"
                    axis.text(
                        0.5, 0.55, text, ha="center", va="center", fontsize=22, transform=axis.transAxes
                    )
                    axis.plot(times, values, alpha=0.3)
                else:
                    axis.plot(times, values, label=legend(target.get("legendFormat", ""), series["metric"]))
                drawn += 1
        for step_ in panel["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])[1:]:
            if panel["type"] == "timeseries":
                axis.axhline(step_["value"], color=step_["color"], linestyle="--", linewidth=1)
        if panel["type"] == "timeseries" and axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=6, loc="upper left")
        axis.tick_params(labelsize=7)
        axis.set_ylabel(unit, fontsize=7)
    for axis in list(axes.flat)[len(shown) :]:
        axis.axis("off")
    figure.suptitle(f"{dashboard['title']}: {release} in {namespace}, last {minutes} minutes", fontsize=12)
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=90)
    plt.close(figure)
    return drawn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.preview", description=__doc__)
    parser.add_argument("--prometheus", help="a live Prometheus; default: start Inkwell and Prometheus here")
    parser.add_argument("--namespace", default="local")
    parser.add_argument("--release", default="inkwell")
    parser.add_argument("--minutes", type=int, default=15, help="time range drawn")
    parser.add_argument("--traffic-seconds", type=float, default=90, help="traffic sent to the local stack")
    parser.add_argument("--output", type=Path, default=ROOT / "var" / "dashboards-preview.png")
    args = parser.parse_args(argv)
    if args.prometheus:
        drawn = render(
            args.prometheus, args.output, namespace=args.namespace, release=args.release, minutes=args.minutes
        )
    else:
        labels = {"app": "inkwell", "namespace": args.namespace, "release": args.release}
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
                prometheus,
                args.output,
                namespace=args.namespace,
                release=args.release,
                minutes=minutes,
                rate_interval="15s",
            )
    return 0 if drawn else 1


if __name__ == "__main__":
    sys.exit(main())
