"""Every PromQL expression the generated files contain, the metric names each one reads, and the series
the generator knows of."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml

from dashboards import series
from dashboards.generate import FILES
from dashboards.promql import Series
from dashboards.series import HistogramSeries

KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "inf", "nan"}


def rule_groups() -> list[dict[str, Any]]:
    return [
        group
        for path in sorted((FILES / "rules").glob("*.yaml"))
        for group in yaml.safe_load(path.read_text())["groups"]
    ]


def rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"]]


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted((FILES / "dashboards").glob("*.json"))}


def dashboard_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, expr) for every panel target, and ("variable <name>", selector) for every
    label_values() variable."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.*), *(\w+)\)", variable["query"]["query"], flags=re.S)
            assert match, variable
            yield f"variable {variable['name']}", match[1]


def expressions() -> list[tuple[str, str]]:
    """(where, expr) for every rule and every dashboard query."""
    found = [(rule.get("record") or rule["alert"], rule["expr"]) for rule in rules()]
    return found + [
        (f"{name}: {title}", expr)
        for name, board in dashboards().items()
        for title, expr in dashboard_queries(board)
    ]


def unknown_series(service: set[str]) -> set[tuple[str, str]]:
    """(where, name) for every series a query reads that is neither one of `service`, nor recorded by
    a rule, nor declared external in dashboards/series.py."""
    known = (
        service | {rule["record"] for rule in rules() if "record" in rule} | {s.name for s in series.EXTERNAL}
    )
    return {(where, name) for where, expr in expressions() for name in metric_names(expr) - known}


def metric_names(expr: str) -> set[str]:
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    stripped = re.sub(r"\{[^}]*\}", " ", stripped)
    stripped = re.sub(r"\[[^\]]*\]", " ", stripped)
    stripped = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", stripped)
    stripped = re.sub(r"\$\{?\w+\}?", " ", stripped)
    names = set()
    for match in re.finditer(r"(?<![\w:.])([A-Za-z_:][\w:]*)\b(?!\s*\()", stripped):
        if match[1].lower() not in KEYWORDS:
            names.add(match[1])
    return names


def parts(entry: Series | HistogramSeries) -> tuple[Series, ...]:
    """A catalogue entry's series: a histogram's three, or the one."""
    return (entry.bucket, entry.count, entry.sum) if isinstance(entry, HistogramSeries) else (entry,)


def service_series() -> dict[str, Series]:
    """The series dashboards/series.py names for the service's own metrics, by name."""
    return {
        part.name: part
        for value in vars(series).values()
        if isinstance(value, Series | HistogramSeries) and value not in series.EXTERNAL
        for part in parts(value)
    }
