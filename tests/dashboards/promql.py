"""Every PromQL expression the generated files contain, and the metric names each one reads."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml

from dashboards.generate import FILES

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
