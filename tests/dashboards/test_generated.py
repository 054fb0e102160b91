"""The committed dashboards and rules are what the generator makes, and the chart ships them as is."""

from __future__ import annotations

import json

import yaml

from dashboards.generate import FILES, render, stale
from tests.dashboards.promql import dashboards, rule_groups
from tests.support.helm import CHART, one
from tests.support.helm import render as render_chart

PROD = CHART / "ci" / "production-values.yaml"
DEV = CHART / "ci" / "development-values.yaml"


def test_the_committed_files_are_a_fresh_generation() -> None:
    assert stale() == [], "run `make dashboards` and commit the result"
    assert len(render()) == 6


def test_generation_is_deterministic() -> None:
    assert render() == render()


def test_the_chart_ships_every_rule_group_verbatim() -> None:
    rule = one(render_chart(PROD), "PrometheusRule")
    assert rule["spec"]["groups"] == rule_groups()
    assert rule["metadata"]["name"] == "ink-inkwell"


def test_the_chart_ships_every_dashboard_for_the_grafana_sidecar() -> None:
    configmap = one(render_chart(PROD), "ConfigMap", "-dashboards")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "Inkwell"}
    assert {name: json.loads(text) for name, text in configmap["data"].items()} == {
        f"{stem}.json": board for stem, board in dashboards().items()
    }
    assert configmap["data"]["inkwell-overview.json"] == (
        FILES / "dashboards" / "inkwell-overview.json"
    ).read_text().rstrip("\n")


def test_rules_and_dashboards_are_off_unless_asked_for() -> None:
    objects = render_chart(DEV)
    assert "PrometheusRule" not in {o["kind"] for o in objects}
    assert not [o for o in objects if o["metadata"]["name"].endswith("-dashboards")]
    switched = render_chart(DEV, **{"prometheusRule.enabled": "true", "grafanaDashboards.enabled": "true"})
    assert one(switched, "PrometheusRule")
    assert one(switched, "ConfigMap", "-dashboards")


def test_the_service_monitor_gives_the_series_the_labels_the_rules_select_and_aggregate_by() -> None:
    monitor = one(render_chart(PROD), "ServiceMonitor")
    relabelings = monitor["spec"]["endpoints"][0]["relabelings"]
    assert {"targetLabel": "app", "replacement": "inkwell"} in relabelings
    assert {
        "sourceLabels": ["__meta_kubernetes_service_label_app_kubernetes_io_instance"],
        "targetLabel": "release",
    } in relabelings
    recording = yaml.safe_load((FILES / "rules" / "recording.yaml").read_text())
    assert 'app="inkwell"' in recording["groups"][0]["rules"][0]["expr"]
