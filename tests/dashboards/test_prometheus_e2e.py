"""End to end: a real Inkwell on PostgreSQL, scraped by a real Prometheus evaluating the generated
rules, under a little traffic. Every rule and every service-level dashboard query must evaluate and
return data, and read only metrics that exist."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dashboards import local, preview, series
from dashboards.queries import REPLICA
from tests.conftest import PostgresServer
from tests.dashboards.promql import (
    dashboard_queries,
    dashboards,
    metric_names,
    rules,
    service_series,
    unknown_series,
)
from tests.support.otlp import otlp_http_receiver
from tests.support.prometheus import local_rule_files, prometheus, query
from tests.support.server import running_server, server_env

pytestmark = pytest.mark.slow

LABELS = {"app": "inkwell", "namespace": "e2e", "release": "blog"}
VARIABLES = {
    "namespace": "e2e",
    "release": "blog",
    "route": ".*",
    "__rate_interval": "1m",
    "workload": "blog-inkwell",
}
SERVICE_LEVEL = ["inkwell-overview", "inkwell-dependencies", "inkwell-business"]


@dataclass
class Stack:
    prometheus: str
    scraped: dict[str, set[str]]  # sample name: label names
    trace_ids: set[str]


@pytest.fixture(scope="module")
def stack(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    url = postgres.create_database("inkwell_dashboards")
    rule_files = local_rule_files(tmp_path_factory.mktemp("rules"))
    try:
        with otlp_http_receiver() as receiver:
            env = server_env(
                url,
                OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                OTEL_BSP_SCHEDULE_DELAY="200",
                # As the chart's ConfigMap sets it, so the budget's panel and alert have one to read.
                INKWELL_DB_CONNECTION_BUDGET="89",
            )
            with (
                running_server(env) as server,
                prometheus(
                    targets=[f"127.0.0.1:{server.port}"], labels=LABELS, rule_files=rule_files
                ) as url_,
            ):
                local.traffic(server.url, seconds=6)
                text = httpx.get(f"{server.url}/metrics", timeout=10).text
                scraped: dict[str, set[str]] = {}
                for family in text_string_to_metric_families(text):
                    for sample in family.samples:
                        scraped.setdefault(sample.name, set()).update(sample.labels)
                # Two more scrapes and rule evaluations after the traffic.
                deadline = time.monotonic() + 60
                while not query(url_, "namespace_release:inkwell_http_requests:rate5m > 0"):
                    assert time.monotonic() < deadline, "the recording rules produced nothing"
                    time.sleep(0.5)
                time.sleep(3)
                receiver.wait_for(lambda spans: len(spans) > 0)
                yield Stack(url_, scraped, {span.trace_id for span in receiver.spans()})
    finally:
        postgres.drop_database(url)


def test_every_metric_a_query_reads_is_exported_recorded_or_declared_external(stack: Stack) -> None:
    assert unknown_series(set(stack.scraped)) == set()
    # The check can fail: it sees every name, and only names.
    (hpa,) = [rule["expr"] for rule in rules() if rule.get("alert") == "InkwellHPAAtMaximum"]
    assert metric_names(hpa) == {
        "kube_horizontalpodautoscaler_status_current_replicas",
        "kube_horizontalpodautoscaler_spec_max_replicas",
        "kube_horizontalpodautoscaler_spec_min_replicas",
        "inkwell_build_info",
    }


def test_the_service_series_carry_the_labels_queries_are_checked_against(stack: Stack) -> None:
    for name, declared in service_series().items():
        assert stack.scraped.get(name) == declared.labels - series.TARGET_LABELS, name


RECORDED = [rule for rule in rules() if "record" in rule]


@pytest.mark.parametrize(
    "rule", RECORDED, ids=[" ".join([r["record"], *r.get("labels", {}).values()]) for r in RECORDED]
)
def test_every_recording_rule_returns_data(stack: Stack, rule: dict[str, Any]) -> None:
    labels = {"namespace": "e2e", "release": "blog", **rule.get("labels", {})}
    matchers = ", ".join(f'{key}="{value}"' for key, value in labels.items())
    result = query(stack.prometheus, f"{rule['record']}{{{matchers}}}")
    assert result, f"{rule['record']} returned nothing"
    assert not math.isnan(float(result[0]["value"][1]))


def test_every_alert_expression_evaluates_and_none_fires_on_healthy_traffic(stack: Stack) -> None:
    for rule in rules():
        if "alert" in rule:
            assert query(stack.prometheus, rule["expr"]) == [], rule["alert"]
    alerts = httpx.get(f"{stack.prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    assert alerts == []
    groups = httpx.get(f"{stack.prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert {rule["health"] for group in groups for rule in group["rules"]} == {"ok"}


@pytest.mark.parametrize("name", SERVICE_LEVEL)
def test_every_service_level_dashboard_query_returns_data(stack: Stack, name: str) -> None:
    empty = []
    for title, expr in dashboard_queries(dashboards()[name]):
        if REPLICA in expr:
            continue  # this Inkwell has no replica: see the next test
        if not query(stack.prometheus, preview.expand(expr, VARIABLES)):
            empty.append(title)
    assert not empty


def test_without_a_replica_the_replica_lines_and_panels_show_no_data(stack: Stack) -> None:
    replica_lines = [
        (title, expr)
        for title, expr in dashboard_queries(dashboards()["inkwell-dependencies"])
        if REPLICA in expr
    ]
    shown = [
        title for title, expr in replica_lines if query(stack.prometheus, preview.expand(expr, VARIABLES))
    ]
    assert not shown
    # Its process exports the replica's own series all the same, at 0: drawn as they are, they would
    # read as a replica never behind, and up == 0 as one always down.
    replica_only = {
        series.DB_REPLICA_LAG.name,
        series.DB_REPLICA_LAG_BYTES.name,
        series.DB_REPLICA_UP.name,
        series.DB_READS.name,
    }
    assert replica_only <= set().union(*(metric_names(expr) for _title, expr in replica_lines))
    for name in sorted(replica_only):
        assert query(stack.prometheus, f'{name}{{release="blog"}}'), name


def test_the_kubernetes_dashboard_queries_are_valid_promql(stack: Stack) -> None:
    # No kube-state-metrics or cAdvisor here: the queries must parse and run, and return nothing.
    for _title, expr in dashboard_queries(dashboards()["inkwell-kubernetes"]):
        query(stack.prometheus, preview.expand(expr, VARIABLES))


def test_the_availability_slo_reads_100_percent_and_latency_is_measured(stack: Stack) -> None:
    assert (
        float(
            query(
                stack.prometheus,
                'namespace_release:inkwell_http_requests_errors:ratio_rate5m{release="blog"}',
            )[0]["value"][1]
        )
        == 0
    )
    p99 = query(
        stack.prometheus,
        'namespace_release:http_request_duration_seconds:histogram_quantile_5m{quantile="0.99"}',
    )
    assert 0 < float(p99[0]["value"][1]) < 10


def test_latency_exemplars_reach_prometheus_with_the_trace_ids_the_collector_received(stack: Stack) -> None:
    now = time.time()
    response = httpx.get(
        f"{stack.prometheus}/api/v1/query_exemplars",
        params={
            "query": 'http_request_duration_seconds_bucket{app="inkwell"}',
            "start": now - 600,
            "end": now,
        },
        timeout=10,
    ).json()
    exemplar_ids = {e["labels"]["trace_id"] for series in response["data"] for e in series["exemplars"]}
    assert exemplar_ids, response
    assert exemplar_ids & stack.trace_ids


def test_the_preview_draws_every_dashboard_with_data_in_units_a_person_reads(
    stack: Stack, tmp_path: Path
) -> None:
    # No namespace or release given: the Prometheus has one Inkwell release, e2e/blog, and that is it.
    drawn = {result.board: result for result in preview.render(stack.prometheus, tmp_path, minutes=2)}
    assert set(drawn) == set(preview.BOARDS)
    for board in ("overview", "dependencies", "business"):
        output = drawn[board].path
        assert output == tmp_path / f"inkwell-{board}.png"
        assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert output.stat().st_size > 20_000
    overview = drawn["overview"]
    panels = [p for p in dashboards()["inkwell-overview"]["panels"] if p["type"] != "row"]
    assert overview.series >= len(panels)
    assert overview.units["Request rate by route"] == "req/s"
    assert overview.units["Latency percentiles"] == "ms"
    assert overview.units["Error ratio by route"] == "%"
    assert overview.units["Availability"] == "%"
    # Coloured by the panel's thresholds: the stat is red or green, never the default black.
    assert overview.colours["Availability"] in {preview.COLOURS["red"], preview.COLOURS["green"]}
    # No kube-state-metrics here: the Kubernetes dashboard is not drawn blank, and the reason is given.
    kubernetes = drawn["kubernetes"]
    assert kubernetes.path is None
    assert "kube-state-metrics" in kubernetes.reason
    assert not (tmp_path / "inkwell-kubernetes.png").exists()
    assert preview.report(list(drawn.values()), None) == 0
    assert preview.report(list(drawn.values()), ["kubernetes"]) == 1


def test_the_preview_says_why_it_draws_nothing_for_a_release_prometheus_does_not_have(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The defect: staging's Prometheus asked for namespace="local" drew a blank picture and exited 2.
    argv = [
        "--prometheus",
        stack.prometheus,
        "--namespace",
        "local",
        "--release",
        "inkwell",
        "--minutes",
        "2",
    ]
    assert preview.main([*argv, "--output-dir", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert "no Inkwell release with namespace='local' release='inkwell'" in error
    assert "--namespace e2e --release blog" in error  # what it does have, as the arguments to give
    assert list(tmp_path.iterdir()) == []
    assert preview.main(["--prometheus", stack.prometheus, "--namespace", "e2e", "--release", "blog",
                         "--minutes", "2", "--output-dir", str(tmp_path)]) == 0  # fmt: skip
    assert (tmp_path / "inkwell-overview.png").is_file()
