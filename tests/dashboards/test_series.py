"""Queries name only series and labels the service defines or dashboards/series.py declares external:
rename a metric of the service and every query follows it; take a label away and generation fails."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from dashboards import queries, series
from dashboards.config import CONFIG
from dashboards.generate import render
from dashboards.panels import graph
from dashboards.promql import UnknownLabel, sum_by
from service.observability import metrics
from tests.dashboards.promql import parts, service_series, unknown_series

CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "counter": series.counter,
    "gauge": series.gauge,
    "histogram": series.histogram,
}
CATALOGUED = sorted(
    name
    for name, value in vars(metrics).items()
    if isinstance(value, MetricWrapperBase) and hasattr(series, name)
)


def redefined(name: str, *, renamed: str | None = None, without: str | None = None) -> Any:
    """The catalogue's entry for the service's metric `name`, as if the service defined it renamed or
    without one of its labels."""
    metric = getattr(metrics, name)
    (family,) = metric.describe()
    labels = [label for label in metric._labelnames if label != without]
    clone = type(metric)(renamed or family.name, family.documentation, labels, registry=CollectorRegistry())
    return CONVERTERS[family.type](clone)


def generated() -> str:
    return "\n".join(render().values())


def names(entry: Any) -> set[str]:
    return {part.name for part in parts(entry)}


def test_the_catalogue_reads_the_metrics_the_service_promises() -> None:
    # Empty, the parametrized tests below would vanish instead of fail.
    promised = {
        *("HTTP_REQUESTS", "HTTP_LATENCY", "HTTP_IN_FLIGHT", "BUILD_INFO"),
        *("REGISTRATIONS", "LOGINS", "LOGIN_FAILURES", "ARTICLES_PUBLISHED", "COMMENTS_CREATED"),
        *("DB_POOL_SIZE", "DB_POOL_CHECKED_OUT", "DB_POOL_OVERFLOW", "DB_POOL_WAIT", "DB_QUERY_DURATION"),
        *("DB_POOL_OPEN", "DB_CONNECTION_BUDGET"),
        *("DB_READS", "DB_REPLICA_LAG", "DB_REPLICA_LAG_BYTES", "DB_REPLICA_LAG_LIMIT", "DB_REPLICA_UP"),
        *("CACHE_LOOKUPS", "CACHE_ERRORS", "RATE_LIMIT_CHECKS"),
        *("CACHE_LOOKUPS", "CACHE_ERRORS"),
        *("PASSWORD_HASH_WAITS", "PASSWORD_HASH_REFUSALS"),
        *("LIVE_CONNECTIONS", "LIVE_SUBSCRIPTIONS", "LIVE_EVENTS_PUBLISHED", "LIVE_PUBLISH_FAILURES"),
        *("LIVE_EVENTS_DELIVERED", "LIVE_DELIVERY_LAG", "LIVE_DISCONNECTS", "LIVE_BUS_UP"),
    }
    assert set(CATALOGUED) == promised


def test_series_are_named_and_labelled_as_prometheus_client_exposes_them() -> None:
    registry = CollectorRegistry()
    made = {
        "counter": Counter("things", "", ["kind"], registry=registry),
        "gauge": Gauge("level", "", ["kind"], registry=registry),
        "histogram": Histogram("wait_seconds", "", ["kind"], registry=registry),
    }
    exposed: dict[str, set[str]] = {}
    for metric in made.values():
        metric.labels("a")  # a child, so that collect() has samples
        for family in metric.collect():
            for sample in family.samples:
                exposed.setdefault(sample.name, set()).update(sample.labels)
    for kind, metric in made.items():
        for part in parts(CONVERTERS[kind](metric)):
            assert exposed[part.name] == part.labels - series.TARGET_LABELS, part.name
    assert names(series.counter(made["counter"])) == {"things_total"}
    assert names(series.histogram(made["histogram"])) == {
        "wait_seconds_bucket",
        "wait_seconds_count",
        "wait_seconds_sum",
    }


def test_a_metric_is_read_as_the_type_it_is() -> None:
    with pytest.raises(TypeError, match="http_request_duration_seconds is a histogram"):
        series.counter(metrics.HTTP_LATENCY)


@pytest.mark.parametrize("name", CATALOGUED)
def test_a_renamed_metric_renames_every_query_that_reads_it(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = generated()
    used = {n for n in names(getattr(series, name)) if re.search(rf"(?<![\w:]){n}(?![\w:])", before)}
    assert used, f"no query reads {name}"
    (family,) = getattr(metrics, name).describe()
    monkeypatch.setattr(series, name, redefined(name, renamed=f"renamed_{family.name}"))
    after = generated()
    for old in used:
        assert not re.search(rf"(?<![\w:]){old}(?![\w:])", after), f"{old} is still written somewhere"
        assert f"renamed_{old}" in after


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("HTTP_REQUESTS", "handler"),
        ("HTTP_REQUESTS", "status"),
        ("HTTP_LATENCY", "handler"),
        ("LOGIN_FAILURES", "reason"),
        ("DB_QUERY_DURATION", "operation"),
        ("DB_POOL_SIZE", "database"),
        ("DB_POOL_CHECKED_OUT", "database"),
        ("DB_POOL_OPEN", "database"),
        ("DB_POOL_WAIT", "database"),
        ("DB_READS", "database"),
        ("DB_READS", "reason"),
        ("CACHE_LOOKUPS", "scope"),
        ("CACHE_LOOKUPS", "result"),
        ("CACHE_ERRORS", "operation"),
    ],
)
def test_a_query_on_a_label_the_metric_lost_fails_at_generation(
    name: str, label: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(series, name, redefined(name, without=label))
    with pytest.raises(UnknownLabel, match=rf"has no label {label}\b"):
        render()


def test_the_in_flight_gauge_can_no_longer_be_split_by_method() -> None:
    in_flight = series.HTTP_IN_FLIGHT(*queries.chosen(CONFIG))
    with pytest.raises(UnknownLabel, match="has no label method"):
        sum_by(in_flight, "method")
    with pytest.raises(UnknownLabel, match="has no label method"):
        graph("In flight", "Requests being served right now.", [(in_flight, "{{method}}")], unit="short")


def test_a_matcher_on_an_unknown_label_or_no_matcher_at_all_is_refused() -> None:
    with pytest.raises(UnknownLabel, match="has no label route"):
        series.HTTP_REQUESTS('route="/api/tags"')
    with pytest.raises(ValueError, match="not label matchers"):
        series.HTTP_REQUESTS("handler")
    assert series.HTTP_REQUESTS('handler=~"a|b"', 'status!="5xx"').promql == (
        'http_requests_total{handler=~"a|b", status!="5xx"}'
    )


def test_every_series_a_generated_query_reads_is_the_services_recorded_or_declared_external() -> None:
    assert unknown_series(set(service_series())) == set()
