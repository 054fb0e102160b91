"""Prometheus metrics as a scraper sees them: route templates, not raw paths; business, database and
build metrics; the pool's gauges as the pool stands; OpenMetrics with trace exemplars; exact counts
across several worker processes, and a per-release value reported once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import create_async_engine

from service.observability.metrics import TimedAsyncAdaptedQueuePool, instrument_engine
from tests.factories import create_article, create_user
from tests.support.server import running_server, server_env

pytestmark = pytest.mark.anyio

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when there are none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples(text).items() if n == name and wanted <= ls)


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return response.text


async def test_requests_are_counted_by_route_template_never_by_raw_path(client: httpx.AsyncClient) -> None:
    author = await create_user(client)
    article = await create_article(client, author, title="Label cardinality")
    before = await scrape(client)
    for _ in range(3):
        assert (await client.get(f"/api/articles/{article['slug']}")).status_code == 200
    assert (await client.get("/api/articles/no-such-slug")).status_code == 404
    assert (await client.get("/definitely/not/a/route")).status_code == 404
    after = await scrape(client)

    def delta(**labels: str) -> float:
        return value(after, "http_requests_total", **labels) - value(before, "http_requests_total", **labels)

    assert delta(handler="/api/articles/{slug}", method="GET", status="2xx") == 3
    assert delta(handler="/api/articles/{slug}", method="GET", status="4xx") == 1
    assert delta(handler="none", method="GET", status="4xx") == 1
    assert article["slug"] not in after
    assert "/definitely/not/a/route" not in after
    # The latency histogram counts the same requests, in SLO-sized buckets from 5 ms to 10 s.
    count = "http_request_duration_seconds_count"
    assert (
        value(after, count, handler="/api/articles/{slug}", status="2xx")
        - value(before, count, handler="/api/articles/{slug}", status="2xx")
        == 3
    )
    buckets = {ls for (n, ls), _ in samples(after).items() if n == "http_request_duration_seconds_bucket"}
    edges = {float(dict(ls)["le"]) for ls in buckets}
    assert min(edges) == 0.005
    assert max(edges - {float("inf")}) == 10.0


async def test_scrape_itself_is_not_counted_and_in_flight_is_back_to_zero(client: httpx.AsyncClient) -> None:
    first = await scrape(client)
    second = await scrape(client)
    assert value(second, "http_requests_total", handler="/metrics") == 0
    assert value(first, "http_requests_inprogress") == value(second, "http_requests_inprogress")
    # Scrapes are neither counted nor in flight: a quiet service shows nothing in progress, in the
    # instrumentator's one unlabelled series.
    assert samples(second)[("http_requests_inprogress", frozenset())] == 0


async def test_metrics_speak_prometheus_text_or_openmetrics_as_asked(client: httpx.AsyncClient) -> None:
    text = await client.get("/metrics")
    assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# EOF" not in text.text
    openmetrics = await client.get("/metrics", headers={"Accept": OPENMETRICS})
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")


async def test_business_events_are_counted_once_committed(client: httpx.AsyncClient, db: object) -> None:
    before = await scrape(client)
    author = await create_user(client, username="metered")
    await client.post("/api/users/login", json={"user": {"email": author.email, "password": author.password}})
    await client.post(
        "/api/users/login", json={"user": {"email": author.email, "password": "wrong-password"}}
    )
    await client.post(
        "/api/users/login", json={"user": {"email": "nobody@example.org", "password": "whatever"}}
    )
    article = await create_article(client, author)
    await client.post(
        f"/api/articles/{article['slug']}/comments", json={"comment": {"body": "hi"}}, headers=author.headers
    )
    # A publish that is refused (422) must not be counted.
    refused = await client.post("/api/articles", json={"article": {"title": ""}}, headers=author.headers)
    assert refused.status_code == 422
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("inkwell_registrations_total") == 1
    assert delta("inkwell_logins_total") == 1
    assert delta("inkwell_login_failures_total", reason="wrong_password") == 1
    assert delta("inkwell_login_failures_total", reason="unknown_user") == 1
    assert delta("inkwell_login_failures_total", reason="deactivated") == 0
    assert delta("inkwell_articles_published_total") == 1
    assert delta("inkwell_comments_created_total") == 1


async def test_database_and_build_metrics_are_exported(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    await create_user(client)
    after = await scrape(client)
    selects = "inkwell_db_query_duration_seconds_count"
    assert value(after, selects, operation="SELECT") > value(before, selects, operation="SELECT")
    assert value(after, selects, operation="INSERT") > value(before, selects, operation="INSERT")
    assert value(after, "inkwell_db_pool_size") == 20  # the test settings' pool
    assert value(after, "inkwell_db_pool_checked_out") >= 0
    assert value(after, "inkwell_db_pool_overflow") >= 0
    assert value(after, "inkwell_db_pool_open") >= 1  # the pool keeps what it opened
    assert ("inkwell_db_connection_budget", frozenset()) in samples(after)  # 0: the suite sets none
    assert "inkwell_db_pool_wait_seconds_count" in after
    (build,) = [ls for (n, ls), v in samples(after).items() if n == "inkwell_build_info" and v == 1]
    labels = dict(build)
    assert set(labels) == {"version", "revision", "python_version"}
    assert re.fullmatch(r"3\.\d+\.\d+", labels["python_version"])


def pool_gauges() -> dict[str, float | None]:
    return {
        name: REGISTRY.get_sample_value(f"inkwell_db_pool_{name}", {"database": "primary"})
        for name in ("checked_out", "overflow", "open")
    }


async def test_pool_gauges_read_the_pool_after_it_took_a_connection_back() -> None:
    # SQLite in memory is enough: the pool is the same class as PostgreSQL's and no query is run.
    engine = create_async_engine(
        "sqlite+aiosqlite:///:memory:", poolclass=TimedAsyncAdaptedQueuePool, pool_size=2, max_overflow=2
    )
    instrument_engine(engine)
    try:
        connections = [await engine.connect() for _ in range(3)]  # awaited: each one checked out
        assert pool_gauges() == {"checked_out": 3, "overflow": 1, "open": 3}
        for connection in connections:
            await connection.close()
        # The overflow connection is closed, the two pooled ones stay open and idle. Read in the
        # checkin event, this was {checked_out: 1, overflow: 1, open: 3} until the next request.
        assert pool_gauges() == {"checked_out": 0, "overflow": 0, "open": 2}
    finally:
        await engine.dispose()


def test_latency_samples_carry_the_trace_id_as_an_exemplar() -> None:
    # Tracing needs an endpoint to be on; a closed port is enough, export failures are dropped.
    env = server_env(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", OTEL_BSP_EXPORT_TIMEOUT="200")
    with running_server(env) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        assert client.get("/api/tags", headers={"traceparent": traceparent}).status_code == 200
        scraped = client.get("/metrics", headers={"Accept": OPENMETRICS}).text
    exemplars = [line for line in scraped.splitlines() if 'handler="/api/tags"' in line and "# {" in line]
    assert exemplars, scraped
    assert all('trace_id="0af7651916cd43dd8448eb211c80319c"' in line for line in exemplars)


def _workers_of(parent: int) -> list[int]:
    result = subprocess.run(["ps", "--ppid", str(parent), "-o", "pid=,args="], capture_output=True, text=True)
    return [int(line.split()[0]) for line in result.stdout.splitlines() if "multiprocessing.spawn" in line]


def test_counts_are_exact_across_workers_and_survive_a_dead_worker() -> None:
    requests_before_kill, requests_after_kill = 60, 40
    with running_server(server_env(), workers=2) as server:
        deadline = time.monotonic() + 60
        while len(_workers_of(server.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = _workers_of(server.process.pid)
        assert len(workers) == 2
        # A new connection per request, so the kernel spreads them over both workers.
        for _ in range(requests_before_kill):
            assert httpx.get(f"{server.url}/api/tags", timeout=30).status_code == 200
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while (
            set(_workers_of(server.process.pid)) & {workers[0]} or len(_workers_of(server.process.pid)) < 2
        ) and (time.monotonic() < deadline):
            time.sleep(0.2)
        assert workers[0] not in _workers_of(server.process.pid)
        for _ in range(requests_after_kill):
            assert httpx.get(f"{server.url}/api/tags", timeout=30).status_code == 200
        scraped = httpx.get(f"{server.url}/metrics", timeout=30).text
    total = value(scraped, "http_requests_total", handler="/api/tags", method="GET", status="2xx")
    # The killed worker's counts are kept (counters are per-process files, summed on scrape).
    assert total == requests_before_kill + requests_after_kill
    assert value(scraped, "http_request_duration_seconds_count", handler="/api/tags") == total
    # Nothing is left in flight once the requests are answered (scrapes are not counted).
    assert value(scraped, "http_requests_inprogress") == 0
    assert "died; starting a new one" in server.output()


def test_the_connection_budget_is_reported_once_however_many_workers() -> None:
    env = server_env(INKWELL_DB_CONNECTION_BUDGET="89")
    with running_server(env, workers=2) as server:
        deadline = time.monotonic() + 60
        while len(_workers_of(server.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_workers_of(server.process.pid)) == 2
        scraped = httpx.get(f"{server.url}/metrics", timeout=30).text
    # The release's number, as each worker has it: summed over the two workers it would read 178.
    assert samples(scraped)[("inkwell_db_connection_budget", frozenset())] == 89
