"""The dashboards are valid Foundation SDK objects and JSON that a Grafana imports as intended."""

from __future__ import annotations

import json
from typing import Any

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards.config import CONFIG
from dashboards.queries import PRIMARY, REPLICA
from service.config import Settings
from tests.dashboards.promql import dashboards

BOARDS = dashboards()
SERVICE_LEVEL = ["inkwell-overview", "inkwell-dependencies", "inkwell-business"]


def test_there_are_the_four_dashboards_with_unique_uids() -> None:
    assert sorted(BOARDS) == sorted([*SERVICE_LEVEL, "inkwell-kubernetes"])
    assert sorted(board["uid"] for board in BOARDS.values()) == sorted(BOARDS)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_the_dashboard_round_trips_through_the_sdk_types(name: str) -> None:
    board = BOARDS[name]
    parsed = Dashboard.from_json(board)
    assert json.loads(json.dumps(parsed, cls=JSONEncoder)) == board


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_the_dashboard_imports_with_a_datasource_variable_and_the_scope_variables(name: str) -> None:
    board = BOARDS[name]
    assert board["schemaVersion"] >= 39
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for scope in ("namespace", "release"):
        assert variables[scope]["type"] == "query"
        assert variables[scope]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert board["links"][0]["type"] == "dashboards"
    assert board["links"][0]["tags"] == list(CONFIG.dashboard_tags)
    assert board["links"][0]["includeVars"]
    assert board["links"][0]["keepTime"]


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_panel_is_described_has_a_unit_and_thresholds_and_reads_the_chosen_datasource(
    name: str,
) -> None:
    for panel in panels(BOARDS[name]):
        assert len(panel["description"]) > 30, panel["title"]
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults["unit"], panel["title"]
        assert defaults["thresholds"]["steps"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        if name != "inkwell-kubernetes":
            # Every service-level query is scoped to the chosen namespace and release.
            for target in panel["targets"]:
                assert '"$namespace"' in target["expr"], panel["title"]
                assert '"$release"' in target["expr"], panel["title"]


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_panels_tile_the_grid_without_overlapping(name: str) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in BOARDS[name]["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells


def test_the_latency_panel_asks_for_exemplars_so_they_link_to_traces() -> None:
    (latency,) = [p for p in BOARDS["inkwell-overview"]["panels"] if p["title"] == "Latency percentiles"]
    assert all(target["exemplar"] for target in latency["targets"])
    threshold = latency["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"]
    assert threshold == CONFIG.latency_threshold_seconds


def test_the_slo_panels_show_the_configured_objectives() -> None:
    stats = {p["title"]: p for p in BOARDS["inkwell-overview"]["panels"] if p["type"] == "stat"}
    availability = stats["Availability"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert availability[-1]["value"] == CONFIG.availability_target
    assert "/ 0.001" in stats["Availability error budget left"]["targets"][0]["expr"]
    assert "/ 0.01" in stats["Latency error budget left"]["targets"][0]["expr"]


def test_the_replica_lag_panel_draws_the_alerts_threshold_and_the_services_lag_limit() -> None:
    (lag,) = [p for p in BOARDS["inkwell-dependencies"]["panels"] if p["title"] == "Replica lag"]
    steps = [step["value"] for step in lag["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    # The service does not export its limit: the dashboards' copy must be the default it ships with.
    limit = Settings.model_fields["db_read_max_lag_seconds"].default
    assert CONFIG.replica_lag_limit_seconds == limit
    assert steps == [None, CONFIG.replica_lag_alert_seconds, limit]
    assert CONFIG.replica_lag_alert_seconds < limit


def test_the_pool_panels_draw_each_database_apart_and_the_budget_counts_the_primary_only() -> None:
    by_title = {p["title"]: p for p in panels(BOARDS["inkwell-dependencies"])}
    for title in ("Pool saturation", "Connections", "Wait for a connection"):
        exprs = [target["expr"] for target in by_title[title]["targets"]]
        assert all((PRIMARY in e) != (REPLICA in e) for e in exprs), title
        assert any(REPLICA in e for e in exprs), title
    budget = by_title["Connections against the budget"]["targets"]
    assert not [t for t in budget if REPLICA in t["expr"]]
    assert all(PRIMARY in t["expr"] for t in budget if "inkwell_db_pool_" in t["expr"])
