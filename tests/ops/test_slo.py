"""`slo` against a real Prometheus: on the real service's metrics, from the recording rules of dashboards/ and
from raw series where there are no rules; and on a target whose error and latency ratios are known, so the
availability, budget, burn rates and percentiles can be checked to the digit."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from ops.cli import app
from tests.ops.conftest import eventually
from tests.support.prometheus import local_rule_files, prometheus, query
from tests.support.server import ServerProcess, running_server, server_env

pytestmark = pytest.mark.slow

LABELS = {"namespace": "shop", "release": "ink", "app": "inkwell"}


def slo(url: str, *args: str, release: str = "ink") -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(
        app, ["-o", "json", "-n", "shop", "-r", release, "slo", "--prometheus", url, *args]
    )
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return local_rule_files(tmp_path_factory.mktemp("rules"))


# --- the real service --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service() -> Iterator[ServerProcess]:
    with running_server(server_env()) as server:
        yield server


def _traffic(url: str, requests: int = 30) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(requests):
            assert client.get("/api/articles").status_code == 200
            client.get("/healthz")  # probes are not users' traffic: they must not count


def test_slo_of_the_real_service_from_the_recording_rules(service: ServerProcess, rules: list[Path]) -> None:
    target = service.url.removeprefix("http://")
    with prometheus(targets=[target], labels=LABELS, rule_files=rules) as url:
        _traffic(service.url)
        # Two scrapes after the traffic, then one evaluation of every rule, the 30-day ones included.
        eventually(
            lambda: (
                query(url, 'namespace_release:inkwell_http_requests_errors:ratio_rate30d{release="ink"}')
                and query(url, 'namespace_release:inkwell_http_requests_slow:ratio_rate3d{release="ink"}')
            ),
            what="the recording rules' first values",
        )
        # The first scrape may come after the first requests; these are certainly seen as an increase.
        _traffic(service.url, 5)
        # Every rule the assertions read has evaluated on the increase (NaN, from 0/0, never compares true).
        recorded = [
            'namespace_release:inkwell_http_requests:rate5m{release="ink"} > 0',
            'namespace_release:http_request_duration_seconds:histogram_quantile_5m{quantile="0.95"} >= 0',
            'namespace_release:inkwell_http_requests_slow:ratio_rate1h{release="ink"} >= 0',
            'namespace_release:inkwell_http_requests_errors:ratio_rate30d{release="ink"} >= 0',
        ]
        eventually(lambda: all(query(url, expr) for expr in recorded), what="the rules on the new requests")
        code, report = slo(url)
    assert code == 0, report
    assert report["healthy"] is True
    assert report["availability"] == 1.0
    assert report["availability_budget_left"] == 1.0
    # A list of articles on SQLite takes a few milliseconds; a busy test machine may slow a few down.
    assert report["latency_sli"] >= 0.9
    assert 0 < report["p95_seconds"] < 2.5
    assert report["requests_per_second"] > 0
    assert report["sources"]["errors:30d"] == "rule"
    assert report["sources"]["slow:1h"] == "rule"
    assert report["sources"]["p0.95"] == "rule"
    assert all(rates == {"availability": 0.0, "latency": 0.0} for rates in report["burn_rates"].values())
    assert not any(alert["firing"] for alert in report["alerts"])


# --- a target with known ratios ------------------------------------------------------------------------

# Per second: 100 requests, 1 of them 5xx (1%: 10x the 0.1% budget); 98 within 250 ms (2% slow: 2x the
# 1% budget). Buckets put p95 at 0.1 + 5/8 * 0.15 = 0.19375 s and p99 at 0.25 + 1/1.5 * 0.25 = 0.41667 s.
RATES = {"2xx": 99.0, "5xx": 1.0}
BUCKETS = {"0.1": 90.0, "0.25": 98.0, "0.5": 99.5, "+Inf": 100.0}


def _exposition(seconds: float) -> str:
    lines = ["# TYPE http_requests_total counter"]
    for status, rate in RATES.items():
        lines.append(
            f'http_requests_total{{method="GET",handler="/api/articles",status="{status}"}} {rate * seconds}'
        )
    # A probe storm that must be left out, or availability would look better than it is.
    lines.append(f'http_requests_total{{method="GET",handler="/healthz",status="2xx"}} {1000 * seconds}')
    lines.append("# TYPE http_request_duration_seconds histogram")
    labels = 'method="GET",handler="/api/articles",status="2xx"'
    for le, rate in BUCKETS.items():
        lines.append(f'http_request_duration_seconds_bucket{{{labels},le="{le}"}} {rate * seconds}')
    lines.append(f"http_request_duration_seconds_count{{{labels}}} {100 * seconds}")
    lines.append(f"http_request_duration_seconds_sum{{{labels}}} {12.5 * seconds}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def known() -> Iterator[str]:
    started = time.monotonic()

    class Metrics(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = _exposition(time.monotonic() - started + 1).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _check_known(report: dict[str, Any]) -> None:
    assert report["availability"] == pytest.approx(0.99, abs=1e-9)
    assert report["availability_budget_left"] == pytest.approx(
        1 - 0.01 / 0.001, abs=1e-6
    )  # -9: spent 10 times
    assert report["latency_sli"] == pytest.approx(0.98, abs=1e-9)
    assert report["latency_budget_left"] == pytest.approx(-1.0, abs=1e-6)
    assert report["p95_seconds"] == pytest.approx(0.19375, abs=1e-6)
    assert report["p99_seconds"] == pytest.approx(0.25 + 0.25 / 1.5, abs=1e-6)
    for window, rates in report["burn_rates"].items():
        assert rates["availability"] == pytest.approx(10.0, rel=1e-6), window
        assert rates["latency"] == pytest.approx(2.0, rel=1e-6), window
    firing = {(a["slo"], a["long"], a["short"]) for a in report["alerts"] if a["firing"]}
    # 10x burns past 6x, 3x and 1x but not 14.4x; 2x only past 1x.
    assert firing == {
        ("availability", "6h", "30m"),
        ("availability", "1d", "2h"),
        ("availability", "3d", "6h"),
        ("latency", "3d", "6h"),
    }


def test_slo_with_known_ratios_from_the_recording_rules(known: str, rules: list[Path]) -> None:
    with prometheus(targets=[known], labels=LABELS, rule_files=rules) as url:
        eventually(
            lambda: (
                query(url, 'namespace_release:inkwell_http_requests_errors:ratio_rate30d{release="ink"}')
                and query(
                    url,
                    'namespace_release:http_request_duration_seconds:histogram_quantile_5m{quantile="0.99"}',
                )
            ),
            what="the recording rules' first values",
        )
        code, report = slo(url)
    assert code == 3
    assert report["healthy"] is False
    assert set(report["sources"].values()) == {"rule"}
    _check_known(report)


@pytest.fixture(scope="module")
def without_rules(known: str) -> Iterator[str]:
    with prometheus(targets=[known], labels=LABELS) as url:
        eventually(
            lambda: any(len(r["values"]) >= 3 for r in query(url, "http_requests_total[10s]")),
            what="three scrapes",
        )
        yield url


def test_slo_falls_back_to_raw_series_when_there_are_no_rules(without_rules: str) -> None:
    code, report = slo(without_rules)
    assert code == 3
    assert set(report["sources"].values()) == {"raw"}
    _check_known(report)


def test_slo_of_a_release_prometheus_has_no_series_for_is_unknown_not_ok(without_rules: str) -> None:
    code, report = slo(without_rules, release="other")
    assert code == 4
    assert (report["verdict"], report["healthy"], report["has_data"]) == ("unknown", False, False)
    assert report["availability"] is None
    assert {alert["state"] for alert in report["alerts"]} == {"unknown"}
    table = CliRunner().invoke(app, ["-n", "shop", "-r", "other", "slo", "--prometheus", without_rules])
    assert table.exit_code == 4
    alerts = table.stdout.split("Multi-window alerts", 1)[1].splitlines()[2:]
    assert len(alerts) == 8
    assert all(line.rstrip().endswith("unknown (no data)") for line in alerts), alerts
    assert "every SLO is unknown" in table.stderr


@pytest.fixture(scope="module")
def untimed() -> Iterator[str]:
    """Requests without a duration histogram (no errors): availability can be judged, latency cannot."""

    class Metrics(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seconds = time.monotonic() - started + 1
            body = (
                "# TYPE http_requests_total counter\n"
                f'http_requests_total{{method="GET",handler="/api/articles",status="2xx"}} {50 * seconds}\n'
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    started = time.monotonic()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = f"127.0.0.1:{server.server_address[1]}"
        with prometheus(targets=[target], labels=LABELS) as url:
            eventually(
                lambda: any(len(r["values"]) >= 3 for r in query(url, "http_requests_total[10s]")),
                what="three scrapes",
            )
            yield url
    finally:
        server.shutdown()
        server.server_close()


def test_slo_with_availability_but_no_latency_data_is_unknown(untimed: str) -> None:
    code, report = slo(untimed)
    assert code == 4
    assert report["verdict"] == "unknown"
    assert report["availability"] == 1.0
    assert report["latency_sli"] is None
    states = {(a["slo"], a["state"]) for a in report["alerts"]}
    assert states == {("availability", "ok"), ("latency", "unknown")}


def test_slo_fails_when_prometheus_cannot_be_reached() -> None:
    result = CliRunner().invoke(app, ["-n", "shop", "slo", "--prometheus", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "cannot reach Prometheus" in result.stderr
