"""Prometheus metrics: HTTP RED by route template, business events and the database, correct with
several worker processes (prometheus_client's multiprocess mode, set up by `inkwell serve`).

Every metric is defined once at import, so any number of apps in one process share them, and the
dashboards and rules read their names and labels from here (`dashboards/`).
"""

from __future__ import annotations

import functools
import os
import platform
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder
from sqlalchemy import event
from sqlalchemy.engine import Connection, ExecutionContext
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool, QueuePool
from starlette.requests import Request
from starlette.responses import Response

from service import __version__
from service.config import Settings
from service.live import events
from service.observability.tracing import current_trace_ids

if TYPE_CHECKING:
    from service.observability.http import Exchange

# From a fast cache hit to the slowest request an SLO still cares about.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
QUERY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
UNMATCHED = "none"  # every path that matched no route shares this handler label

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests by method, route template and status class",
    ["method", "handler", "status"],
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by method, route template and status class; exemplars carry the trace id",
    ["method", "handler", "status"],
    buckets=LATENCY_BUCKETS,
)
# prometheus-fastapi-instrumentator's in-progress gauge as it ships (no labels): its names and
# labels are ours, so dashboards written for it work (tests/observability/test_instrumentator.py).
HTTP_IN_FLIGHT = Gauge("http_requests_inprogress", "HTTP requests being served", multiprocess_mode="livesum")

REGISTRATIONS = Counter("inkwell_registrations_total", "Users registered")
LOGINS = Counter("inkwell_logins_total", "Successful logins")
LOGIN_FAILURES = Counter("inkwell_login_failures_total", "Refused logins by reason", ["reason"])
ARTICLES_PUBLISHED = Counter("inkwell_articles_published_total", "Articles published")
COMMENTS_CREATED = Counter("inkwell_comments_created_total", "Comments created")

# The pools' series carry the database they lead to: "primary", or "replica" (database_read_url).
DATABASES = ("primary", "replica")
DB_POOL_SIZE = Gauge(
    "inkwell_db_pool_size", "Configured pool size", ["database"], multiprocess_mode="livesum"
)
DB_POOL_CHECKED_OUT = Gauge(
    "inkwell_db_pool_checked_out", "Connections in use by requests", ["database"], multiprocess_mode="livesum"
)
DB_POOL_OVERFLOW = Gauge(
    "inkwell_db_pool_overflow",
    "Connections open beyond the pool size",
    ["database"],
    multiprocess_mode="livesum",
)
DB_POOL_OPEN = Gauge(
    "inkwell_db_pool_open",
    "Connections open to the database, in use or idle in the pool: what its max_connections counts",
    ["database"],
    multiprocess_mode="livesum",
)
# The same number in every process of a release (the chart sets it), so one process's value is the
# answer: not summed over workers as the pool's gauges are.
DB_CONNECTION_BUDGET = Gauge(
    "inkwell_db_connection_budget",
    "Connections the release's pods may hold together at the database (INKWELL_DB_CONNECTION_BUDGET); "
    "0 when unknown",
    multiprocess_mode="max",
)
DB_POOL_WAIT = Histogram(
    "inkwell_db_pool_wait_seconds",
    "Time a request waited for a pooled connection",
    ["database"],
    buckets=QUERY_BUCKETS,
)
# Where each read-only unit of work ran, and why there (service.replica): on the replica once it
# had replayed what the read must see; on the primary for the reader's own recent write
# (own_write), for a cached scope's recent write (cache_fill), or with the replica too far behind
# (lagging) or not answering as a replica (unavailable).
READ_ROUTES = (
    ("replica", "replayed"),
    ("primary", "own_write"),
    ("primary", "cache_fill"),
    ("primary", "lagging"),
    ("primary", "unavailable"),
)
DB_READS = Counter(
    "inkwell_db_reads_total",
    "Read-only units of work by the database they ran on and why (with a replica configured)",
    ["database", "reason"],
)
# Read by each process from the replica every db_replica_check_seconds; the worst live process's
# view (a dead worker's last reading does not stay).
DB_REPLICA_LAG = Gauge(
    "inkwell_db_replica_lag_seconds",
    "How far the replica's replay is behind: 0 when it has replayed all it received",
    multiprocess_mode="livemax",
)
DB_REPLICA_LAG_BYTES = Gauge(
    "inkwell_db_replica_lag_bytes",
    "WAL the primary has written that the replica has not replayed",
    multiprocess_mode="livemax",
)
# The same in every process of a release, so the worst is the answer; 0 without a replica.
DB_REPLICA_LAG_LIMIT = Gauge(
    "inkwell_db_replica_lag_limit_seconds",
    "The lag past which the replica serves no read (INKWELL_DB_READ_MAX_LAG_SECONDS)",
    multiprocess_mode="livemax",
)
DB_REPLICA_UP = Gauge(
    "inkwell_db_replica_up",
    "1 while the replica answers as a replica within the lag limit and serves reads, else 0",
    multiprocess_mode="livemin",
)
DB_QUERY_DURATION = Histogram(
    "inkwell_db_query_duration_seconds",
    "SQL statement duration by operation (SELECT, INSERT, UPDATE, DELETE, OTHER)",
    ["operation"],
    buckets=QUERY_BUCKETS,
)
CACHE_LOOKUPS = Counter(
    "inkwell_cache_lookups_total", "Cached public reads by scope and result (hit, miss)", ["scope", "result"]
)
CACHE_ERRORS = Counter(
    "inkwell_cache_errors_total", "Cache store failures by operation (get, put, invalidate)", ["operation"]
)
# Every request a rate limit policy checked (service.ratelimit), by its result: allowed, limited
# (answered 429), or unavailable (the limits' store failed: the login policies then answer 503, the
# others let the request through). Policies, not clients, label it: a client IP would be unbounded.
RATE_LIMIT_POLICIES = ("login", "login_account", "registration", "writes", "reads")
RATE_LIMIT_RESULTS = ("allowed", "limited", "unavailable")
RATE_LIMIT_CHECKS = Counter(
    "inkwell_rate_limit_checks_total",
    "Requests checked by a rate limit policy, by result (allowed, limited: 429, unavailable: store down)",
    ["policy", "result"],
)
# Argon2 hashes (logins, registrations, password changes) are bounded per process by its memory
# budget (INKWELL_ARGON2_MAX_CONCURRENT): those that found every slot taken waited, and those still
# without one after INKWELL_ARGON2_WAIT_SECONDS were refused with 503 (service.auth.security).
PASSWORD_HASH_WAITS = Counter(
    "inkwell_password_hash_waits_total", "Password hashes that waited for a slot (all were in use)"
)
PASSWORD_HASH_REFUSALS = Counter(
    "inkwell_password_hash_refusals_total", "Password hashes refused with 503 after waiting their time"
)
# Live updates (service.live, docs/live.md): sockets and subscriptions held by live processes, events
# through the bus, and why sockets were closed.
LIVE_DISCONNECT_REASONS = (
    "client", "drain", "bus_lost", "slow_consumer", "expired", "deactivated", "idle", "limit",
    "protocol", "unauthenticated",
)  # fmt: skip
LIVE_CONNECTIONS = Gauge(
    "inkwell_live_connections", "Open live-update WebSockets", multiprocess_mode="livesum"
)
LIVE_SUBSCRIPTIONS = Gauge(
    "inkwell_live_subscriptions",
    "Live subscriptions by topic kind (article, me)",
    ["kind"],
    multiprocess_mode="livesum",
)
LIVE_EVENTS_PUBLISHED = Counter("inkwell_live_events_published_total", "Live events put on the bus", ["type"])
LIVE_PUBLISH_FAILURES = Counter(
    "inkwell_live_publish_failures_total", "Units of work whose live events the bus did not take"
)
LIVE_EVENTS_DELIVERED = Counter(
    "inkwell_live_events_delivered_total", "Live event frames sent to clients", ["type"]
)
LIVE_DELIVERY_LAG = Histogram(
    "inkwell_live_delivery_lag_seconds",
    "From the write's commit to its event's frame sent to a client",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
LIVE_DISCONNECTS = Counter(
    "inkwell_live_disconnects_total", "Live-update WebSockets closed, by reason", ["reason"]
)
# Per process: the worst live process's view, so one worker whose reader is down shows.
LIVE_BUS_UP = Gauge(
    "inkwell_live_bus_up",
    "1 while this process's reader of the live bus is connected",
    multiprocess_mode="livemin",
)
BUILD_INFO = Gauge(
    "inkwell_build_info",
    "Always 1; the labels say what is running",
    ["version", "revision", "python_version"],
    multiprocess_mode="max",
)

for _reason in ("unknown_user", "wrong_password", "deactivated"):
    LOGIN_FAILURES.labels(_reason)  # present at 0 from the start, so rate() works at once
for _operation in ("SELECT", "INSERT", "UPDATE", "DELETE"):
    DB_QUERY_DURATION.labels(_operation)
for _database, _reason in READ_ROUTES:
    DB_READS.labels(_database, _reason)
for _scope in ("articles", "comments"):
    for _result in ("hit", "miss"):
        CACHE_LOOKUPS.labels(_scope, _result)
for _operation in ("get", "put", "invalidate"):
    CACHE_ERRORS.labels(_operation)
for _kind in ("article", "me"):
    LIVE_SUBSCRIPTIONS.labels(_kind)
for _reason in LIVE_DISCONNECT_REASONS:
    LIVE_DISCONNECTS.labels(_reason)
for _type in (*events.CLIENT_TYPES, *sorted(events.INTERNAL_TYPES)):
    LIVE_EVENTS_PUBLISHED.labels(_type)
for _type in events.CLIENT_TYPES:  # internal types are never delivered
    LIVE_EVENTS_DELIVERED.labels(_type)
for _policy in RATE_LIMIT_POLICIES:
    for _result in RATE_LIMIT_RESULTS:
        RATE_LIMIT_CHECKS.labels(_policy, _result)


class HttpMetrics:
    """RED metrics per request, an observer of `service.observability.http`: in flight while it runs,
    then counted and timed by route template.

    The names and labels are prometheus-fastapi-instrumentator's (`http_requests_total{method,
    handler, status="2xx"}`, handler "none" for unmatched paths), so dashboards written for it work.
    Its middleware is not used: measured by `bench.metrics_layer`, it matches the path against
    every route and builds a Request and a Response per request (see the README's Metrics section).

    The scrape (`scrape_path`) is not counted; with the metrics on a port of their own there is
    none on this one (None), and a request for /metrics is a 404 like any other.
    """

    def __init__(self, scrape_path: str | None = "/metrics") -> None:
        self.scrape_path = scrape_path

    def started(self, exchange: Exchange) -> None:
        if exchange.path != self.scrape_path:
            HTTP_IN_FLIGHT.inc()

    def finished(self, exchange: Exchange) -> None:
        if exchange.path == self.scrape_path:
            return
        HTTP_IN_FLIGHT.dec()
        handler = exchange.route() if exchange.scope.get("route") is not None else UNMATCHED
        labels = (exchange.method, handler, f"{exchange.status // 100}xx")
        HTTP_REQUESTS.labels(*labels).inc()
        ids = current_trace_ids(sampled_only=True)
        # Exemplars render only in OpenMetrics, and only in single-process mode (prometheus_client
        # keeps none in multiprocess mode); one worker per pod is the chart's default for that reason.
        HTTP_LATENCY.labels(*labels).observe(
            exchange.duration, exemplar={"trace_id": ids[0]} if ids else None
        )


def registry_for_scrape() -> CollectorRegistry:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


async def metrics_endpoint(request: Request) -> Response:
    # Prometheus text by default; OpenMetrics (with exemplars) when the scraper asks for it.
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(registry_for_scrape()), headers={"Content-Type": content_type})


class _TimedPool:
    """Mixin: how long each checkout waited for a connection, and the pool's gauges as they stand once
    a connection is handed out or put back, labelled with the database the pool leads to.

    The gauges are read here rather than in the engine's checkout and checkin events because the
    checkin event fires before the pool takes the connection back: read there, the last request of a
    burst left one connection "checked out", and an overflow connection that was being closed still
    counted, until the next request came.
    """

    # A class attribute, not set on the instance: the engine replaces its pool with a new one of
    # the same class when it is disposed or invalidated.
    database = "primary"

    def _do_get(self) -> Any:
        started = time.perf_counter()
        try:
            return super()._do_get()  # type: ignore[misc]
        finally:
            _pool_series(self.database).wait.observe(time.perf_counter() - started)
            _record_pool(self)  # type: ignore[arg-type]

    def _do_return_conn(self, record: Any) -> None:
        super()._do_return_conn(record)  # type: ignore[misc]
        _record_pool(self)  # type: ignore[arg-type]


class TimedAsyncAdaptedQueuePool(_TimedPool, AsyncAdaptedQueuePool):
    # Log as SQLAlchemy's own pools do, under "sqlalchemy" (WARNING by default), not at INFO.
    _sqla_logger_namespace = "sqlalchemy.pool.impl.TimedAsyncAdaptedQueuePool"


class ReplicaTimedAsyncAdaptedQueuePool(TimedAsyncAdaptedQueuePool):
    database = "replica"
    _sqla_logger_namespace = "sqlalchemy.pool.impl.ReplicaTimedAsyncAdaptedQueuePool"


def instrument_engine(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine
    pool = sync_engine.pool
    if isinstance(pool, QueuePool):
        # Each app that takes the engine writes its pool's series, even for an engine instrumented
        # before: the gauges are the process's, and the pool of the app made last is the one it
        # serves (in the tests, an app on the suite's shared engine after another test's own).
        _pool_series(getattr(pool, "database", "primary")).size.set(pool.size())
        pool._inkwell_overflow = None  # type: ignore[attr-defined]  # open and overflow written afresh
        _record_pool(pool)
    if getattr(sync_engine, "_inkwell_instrumented", False):
        return
    sync_engine._inkwell_instrumented = True  # type: ignore[attr-defined]

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _start(
        conn: Connection, _cursor: Any, _statement: str, _params: Any, context: ExecutionContext, _many: bool
    ) -> None:
        context._inkwell_started = time.perf_counter()  # type: ignore[attr-defined]

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _stop(
        conn: Connection, _cursor: Any, statement: str, _params: Any, context: ExecutionContext, _many: bool
    ) -> None:
        started = getattr(context, "_inkwell_started", None)
        if started is not None:
            DB_QUERY_DURATION.labels(_operation_of(statement)).observe(time.perf_counter() - started)


class _PoolSeries:
    """One database's pool series, looked up once: `labels()` takes a lock on every call."""

    __slots__ = ("checked_out", "open", "overflow", "size", "wait")

    def __init__(self, database: str) -> None:
        self.size = DB_POOL_SIZE.labels(database)
        self.checked_out = DB_POOL_CHECKED_OUT.labels(database)
        self.overflow = DB_POOL_OVERFLOW.labels(database)
        self.open = DB_POOL_OPEN.labels(database)
        self.wait = DB_POOL_WAIT.labels(database)


@functools.cache
def _pool_series(database: str) -> _PoolSeries:
    return _PoolSeries(database)


def _record_pool(pool: QueuePool) -> None:
    series = _pool_series(getattr(pool, "database", "primary"))
    series.checked_out.set(pool.checkedout())
    # Connections open (in use or idle in the pool: idle ones hold a server slot as much as busy
    # ones do) are the pool's size plus its overflow, which moves only when a connection is opened
    # or closed: written then, not twice per request.
    overflow = pool.overflow()
    if getattr(pool, "_inkwell_overflow", None) != overflow:
        pool._inkwell_overflow = overflow  # type: ignore[attr-defined]
        series.overflow.set(max(overflow, 0))
        series.open.set(pool.size() + overflow)


def _operation_of(statement: str) -> str:
    head = statement.lstrip()[:6].upper()
    return head if head in {"SELECT", "INSERT", "UPDATE", "DELETE"} else "OTHER"


def record_build(settings: Settings) -> None:
    BUILD_INFO.labels(__version__, settings.git_revision, platform.python_version()).set(1)


def record_connection_budget(settings: Settings) -> None:
    DB_CONNECTION_BUDGET.set(settings.db_connection_budget)
