"""The staging stack as the load test sees it: nginx routes what the chart's Ingress routes, the
services reach PostgreSQL through PgBouncer and read from its streaming replica, and a 30-second
steady locust run through it (and a distributed one, a master and two workers) fails nothing, is
counted once by the services' /metrics (on their own port, as the chart serves it), and has its reads
served by the replica."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from dashboards.local import query
from launch import free_port
from loadtests.staging import ROOT, Stack, staging_stack
from tests.loadtests.workers import locust_env, locust_workers
from tests.support.server import CHEAP_ARGON2

pytestmark = pytest.mark.slow

PROBES = {"/healthz", "/readyz"}  # the /metrics scrape itself is never counted


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Cheap Argon2 only: on a shared two-core machine the production cost would be most of the run.
    with staging_stack(tmp_path_factory.mktemp("staging"), services=2, env=CHEAP_ARGON2) as stack:
        yield stack


def metrics(url: str) -> list[Metric]:
    """A service's metrics, from its metrics port (`url`), as the chart has Prometheus scrape them."""
    return list(text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text))


def served(stack: Stack) -> dict[str, int]:
    """Requests each service process counted (http_requests_total), probes left out."""
    counts = {}
    for url in stack.metrics_urls:
        families = metrics(url)
        counts[url] = int(
            sum(
                sample.value
                for family in families
                if family.name == "http_requests"
                for sample in family.samples
                if sample.name == "http_requests_total" and sample.labels["handler"] not in PROBES
            )
        )
    return counts


def reads(url: str) -> Counter[tuple[str, str]]:
    """The read-only units of work one service process ran, by (database, reason)."""
    return Counter(
        {
            (sample.labels["database"], sample.labels["reason"]): int(sample.value)
            for family in metrics(url)
            if family.name == "inkwell_db_reads"
            for sample in family.samples
            if sample.name == "inkwell_db_reads_total"
        }
    )


def replica_up(url: str) -> float:
    return next(
        sample.value
        for family in metrics(url)
        if family.name == "inkwell_db_replica_up"
        for sample in family.samples
    )


def access_log(stack: Stack) -> list[dict[str, object]]:
    path = stack.state_dir / "nginx" / "access.log"
    return [json.loads(line) for line in path.read_text().splitlines()]


def locust(stack: Stack, results: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = locust_env()
    return subprocess.run(
        [
            sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--headless",
            "--host", stack.url, "--csv", str(results), "--only-summary", "--stop-timeout", "10s", *args,
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=150, check=False,
    )  # fmt: skip


def test_nginx_routes_the_api_and_its_docs_and_nothing_else(stack: Stack) -> None:
    for path in ("/api/tags", "/docs", "/redoc", "/docs/static/swagger-ui-bundle.js", "/openapi.json"):
        response = httpx.get(f"{stack.url}{path}")
        assert response.status_code == 200, path
    for path in ("/metrics", "/healthz", "/readyz", "/", "/apiary", "/docsx"):
        response = httpx.get(f"{stack.url}{path}")
        # nginx's own 404 page: the request never reached the service (which answers in JSON).
        assert (response.status_code, response.headers["content-type"]) == (404, "text/html"), path


def test_metrics_are_on_their_own_port_and_hosts_are_checked_behind_nginx(stack: Stack) -> None:
    for service, metrics_url in zip(stack.service_urls, stack.metrics_urls, strict=True):
        assert httpx.get(f"{service}/metrics").json() == {"errors": {"path": ["not found"]}}
        assert any(family.name == "http_requests" for family in metrics(metrics_url))
    # nginx passes the client's Host on, as ingress-nginx does; the service refuses what it does not know.
    refused = httpx.get(f"{stack.url}/api/tags", headers={"Host": "evil.example"})
    assert (refused.status_code, refused.json()) == (400, {"errors": {"host": ["is not allowed"]}})
    allowed = httpx.get(f"{stack.url}/api/tags")
    assert allowed.status_code == 200
    assert allowed.headers["x-content-type-options"] == "nosniff"


def test_nginx_passes_the_clients_request_id_or_makes_one(stack: Stack) -> None:
    assert (
        httpx.get(f"{stack.url}/api/tags", headers={"X-Request-ID": "lt-42"}).headers["x-request-id"]
        == "lt-42"
    )
    generated = httpx.get(f"{stack.url}/api/tags").headers["x-request-id"]
    assert len(generated) == 32
    assert int(generated, 16) >= 0
    # nginx writes its access line in its log phase, after the client has the response.
    deadline = time.monotonic() + 10
    while not {"lt-42", generated} <= (logged := {line["request_id"] for line in access_log(stack)}):
        assert time.monotonic() < deadline, f"request ids not in nginx's access log: {logged}"
        time.sleep(0.1)


def test_nginx_refuses_bodies_over_the_charts_proxy_body_size(stack: Stack) -> None:
    headers = {"Content-Type": "application/json"}
    too_big = httpx.post(f"{stack.url}/api/users", content=b"x" * (1024 * 1024 + 1), headers=headers)
    assert too_big.status_code == 413
    assert too_big.headers["content-type"] == "text/html"  # nginx's, not the service's
    just_fits = httpx.post(f"{stack.url}/api/users", content=b"x" * (1000 * 1000), headers=headers)
    # Reached the service, which found no JSON in it.
    assert just_fits.status_code == 422, just_fits.text


def staging_status(stack: Stack) -> Any:
    """What `python -m loadtests.staging status -o json` says of the stack."""
    shown = subprocess.run(
        [sys.executable, "-m", "loadtests.staging", "status", "--state-dir", str(stack.state_dir), "-o", "json"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return json.loads(shown.stdout)


def test_the_services_reach_postgresql_through_pgbouncer_and_status_shows_its_pools(stack: Stack) -> None:
    status = staging_status(stack)
    assert status["running"]["pgbouncer"] is True
    assert status["pooler_url"] == stack.pooler_url != stack.database_url
    pools = status["pgbouncer_pools"]
    assert [(pool["database"], pool["pool_mode"]) for pool in pools] == [("inkwell", "transaction")]
    # Every process's readiness probe has been answered through it: each keeps a client connection.
    assert int(pools[0]["cl_active"]) >= len(stack.service_urls)


def test_the_services_read_from_the_replica_and_status_shows_it(stack: Stack) -> None:
    status = staging_status(stack)
    assert status["running"]["replica"] is True
    assert status["replica_url"] == stack.replica_url
    assert stack.replica_url.rsplit("@", 1)[1] not in {
        stack.database_url.rsplit("@", 1)[1],
        stack.pooler_url.rsplit("@", 1)[1],
    }
    env = (stack.state_dir / "staging.env").read_text().splitlines()
    assert f"INKWELL_STAGING_REPLICA_URL='{stack.replica_url}'" in env
    # Each process checks the replica every 0.5 s: up once it answers as a replica within the lag limit.
    deadline = time.monotonic() + 30
    while (ups := [replica_up(url) for url in stack.metrics_urls]) != [1.0] * len(stack.metrics_urls):
        assert time.monotonic() < deadline, f"inkwell_db_replica_up: {ups}"
        time.sleep(0.5)


def test_prometheus_scrapes_every_process_with_the_charts_labels_and_rules(stack: Stack) -> None:
    deadline = time.monotonic() + 30
    while True:
        up = query(stack.prometheus_url, 'up{app="inkwell", namespace="staging", release="inkwell"}')
        if len(up) == len(stack.service_urls) and all(series["value"][1] == "1" for series in up):
            break
        assert time.monotonic() < deadline, f"targets not up: {up}"
        time.sleep(1)
    assert sorted(series["metric"]["pod"] for series in up) == ["inkwell-0", "inkwell-1"]
    rules = httpx.get(f"{stack.prometheus_url}/api/v1/rules").json()["data"]["groups"]
    assert rules, "the generated rules are loaded"
    assert all(rule["health"] != "err" for group in rules for rule in group["rules"])


def rate_limit_checks(stack: Stack) -> Counter[str]:
    """Requests the services' rate limits checked, by result, over every process."""
    return sum(
        (
            Counter({sample.labels["result"]: int(sample.value)})
            for url in stack.metrics_urls
            for family in metrics(url)
            if family.name == "inkwell_rate_limit_checks"
            for sample in family.samples
            if sample.name == "inkwell_rate_limit_checks_total"
        ),
        Counter(),
    )


def deliveries(stats_csv: Path) -> int:
    """The live listeners' deliveries in locust's stats: what the verdict leaves out of its total
    (loadtests/slo.toml `not_requests`)."""
    with stats_csv.open() as stats:
        rows = list(csv.DictReader(stats))
    return sum(
        int(row["Request Count"]) for row in rows if (row["Type"], row["Name"]) == ("WS", "comment.created")
    )


def http_requests(stats_csv: Path) -> tuple[dict[str, str], int, int]:
    """locust's total row, the HTTP requests in it, and the WebSockets opened: the live listeners'
    deliveries ("WS comment.created") are in locust's stats but are no request of the service's."""
    with stats_csv.open() as stats:
        rows = list(csv.DictReader(stats))
    total = next(row for row in rows if row["Name"] == "Aggregated")
    sockets = sum(
        int(row["Request Count"]) for row in rows if (row["Type"], row["Name"]) == ("WS", "connect")
    )
    ws = sum(int(row["Request Count"]) for row in rows if row["Type"] == "WS")
    return total, int(total["Request Count"]) - ws, sockets


def test_a_steady_run_fails_nothing_and_every_request_is_counted_once(stack: Stack, tmp_path: Path) -> None:
    before, log_before = served(stack), len(access_log(stack))
    reads_before = {url: reads(url) for url in stack.metrics_urls}
    limits_before = rate_limit_checks(stack)

    run = locust(
        stack, tmp_path / "steady", "--shape", "steady", "-u", "10", "-r", "5", "-t", "30s",
        "--html", str(tmp_path / "steady.html"),
        # Loose enough for a shared two-core machine; no failure at all.
        "--gate-p95-ms", "5000", "--gate-p99-ms", "5000", "--gate-max-failure-ratio", "0", "--gate-min-rps", "1",
    )  # fmt: skip

    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-6000:]
    assert "SLO verdict: PASS" in run.stdout
    total, requests, sockets = http_requests(tmp_path / "steady_stats.csv")
    assert int(total["Failure Count"]) == 0
    assert requests > 100  # 10 users for 30 s, one request every ~2 s each, and their setup
    report = json.loads((tmp_path / "steady_slo.json").read_text())
    assert report["passed"] is True
    # The verdict's total is locust's, less the listeners' deliveries (frames, not requests).
    assert report["total"]["requests"] == int(total["Request Count"]) - deliveries(
        tmp_path / "steady_stats.csv"
    )
    assert (tmp_path / "steady.html").stat().st_size > 0

    after = served(stack)
    per_process = {url: after[url] - before[url] for url in after}
    assert sum(per_process.values()) == requests, per_process
    assert all(count > 0 for count in per_process.values()), f"nginx balanced nothing: {per_process}"
    logged = access_log(stack)[log_before:]
    # The live listeners' sockets are one line each (101), written when they close.
    proxied = [line for line in logged if line["uri"] != "/api/live"]
    assert len(logged) - len(proxied) == sockets
    assert len(proxied) == requests
    assert [line for line in proxied if "," in str(line["upstream_addr"])] == [], "nginx retried"
    assert all(int(str(line["status"])) < 400 for line in proxied)

    # The replica served reads in every process, and with no failure above its readers read their
    # own writes; a replica left unused (not configured, or always behind) would read nothing here.
    read = {url: reads(url) - reads_before[url] for url in stack.metrics_urls}
    shares = {url: dict(counts) for url, counts in read.items()}
    assert all(counts["replica", "replayed"] > 0 for counts in read.values()), shares

    # The chart's rate limits were on (in Redis, as the stack runs them) and refused nothing.
    limits = rate_limit_checks(stack)
    limits.subtract(limits_before)
    assert limits["allowed"] >= requests, limits
    assert limits["limited"] == 0, limits
    assert limits["unavailable"] == 0, limits


def test_a_crossed_gate_makes_locust_exit_1_with_the_verdict(stack: Stack, tmp_path: Path) -> None:
    run = locust(
        stack, tmp_path / "short", "-u", "2", "-t", "3s",
        # Only the throughput limit can be crossed: the others as loose as in the steady run.
        "--gate-min-rps", "100000", "--gate-p95-ms", "5000", "--gate-p99-ms", "5000",
    )  # fmt: skip
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert "SLO verdict: FAIL" in run.stdout
    report = json.loads((tmp_path / "short_slo.json").read_text())
    assert [(c["group"], c["gate"]) for c in report["checks"] if c["passed"] is False] == [
        ("Aggregated", "min rps")
    ]


def test_a_distributed_run_counts_every_workers_requests_once(stack: Stack, tmp_path: Path) -> None:
    # Locust's master/worker mode: two workers (each creating its own authors and articles) report
    # to a headless master, which runs the shape, judges the gates and writes the reports.
    before = sum(served(stack).values())
    port = free_port()
    with locust_workers(port) as workers:
        run = locust(
            stack, tmp_path / "distributed", "--master", "--master-bind-host", "127.0.0.1",
            "--master-bind-port", str(port), "--expect-workers", "2", "--expect-workers-max-wait", "60",
            "--shape", "steady", "-u", "6", "-r", "3", "-t", "15s",
            "--gate-p95-ms", "5000", "--gate-p99-ms", "5000", "--gate-max-failure-ratio", "0", "--gate-min-rps", "1",
        )  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-6000:]
    assert "SLO verdict: PASS" in run.stdout
    assert all(worker.returncode == 0 for worker in workers)
    report = json.loads((tmp_path / "distributed_slo.json").read_text())
    assert report["passed"] is True
    total, requests, _sockets = http_requests(tmp_path / "distributed_stats.csv")
    frames = deliveries(tmp_path / "distributed_stats.csv")
    assert report["total"]["requests"] == int(total["Request Count"]) - frames
    assert requests > 30
    assert sum(served(stack).values()) - before == requests
