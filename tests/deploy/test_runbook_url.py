"""The alerts' runbook_url follows the chart's prometheusRule.runbookBaseUrl, so an installation links
its alerts to wherever it publishes docs/runbooks; by default the chart and the generator agree."""

from __future__ import annotations

import pytest
import yaml

from dashboards.config import CONFIG
from tests.support.helm import CHART, helm, one, render

pytestmark = pytest.mark.slow

PROD = CHART / "ci" / "production-values.yaml"


def _runbook_urls(**sets: str) -> dict[str, str]:
    rule = one(render(PROD, **sets), "PrometheusRule")
    return {
        alert["alert"]: alert["annotations"]["runbook_url"]
        for group in rule["spec"]["groups"]
        for alert in group["rules"]
        if "alert" in alert
    }


def test_the_charts_default_base_is_the_generators() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["prometheusRule"]["runbookBaseUrl"] == CONFIG.runbook_base_url
    urls = _runbook_urls()
    assert urls
    assert urls == {alert: CONFIG.runbook(alert) for alert in urls}


def test_a_base_url_set_for_the_release_is_every_alerts_runbook_url() -> None:
    base = "https://git.example.com/ops/inkwell/-/blob/v0.1.0/docs/runbooks"
    urls = _runbook_urls(**{"prometheusRule.runbookBaseUrl": base + "/"})  # a trailing slash is dropped
    assert urls
    assert urls == {alert: f"{base}/{alert}.md" for alert in urls}
    # Only the link changes: the recording rules and every other annotation are as generated.
    default = one(render(PROD), "PrometheusRule")["spec"]["groups"]
    linked = one(render(PROD, **{"prometheusRule.runbookBaseUrl": base}), "PrometheusRule")["spec"]["groups"]
    for group in linked:
        for rule in group["rules"]:
            rule.get("annotations", {}).pop("runbook_url", None)
    for group in default:
        for rule in group["rules"]:
            rule.get("annotations", {}).pop("runbook_url", None)
    assert linked == default


def test_an_empty_base_url_is_refused() -> None:
    result = helm(
        "template", "x", str(CHART), "-f", str(PROD), "--set", "prometheusRule.runbookBaseUrl=", check=False
    )
    assert result.returncode != 0
    assert "runbookBaseUrl" in result.stderr
