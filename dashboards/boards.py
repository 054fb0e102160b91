"""The four Inkwell dashboards: service overview, dependencies, Kubernetes and business; how their
panels are laid out and read, the queries they draw coming from dashboards/queries.py."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as models

from dashboards import queries as q
from dashboards import series
from dashboards.config import CONFIG, Config
from dashboards.panels import Panel, board, graph, label_variable, scope_variables, single
from dashboards.promql import Series
from dashboards.queries import RATE

REMAINING = [(None, "red"), (0.0, "orange"), (0.25, "green")]


def overview(config: Config = CONFIG) -> models.Dashboard:
    route = label_variable(
        "route", "Route", series.HTTP_REQUESTS(*q.chosen_users(config)), label="handler", include_all=True
    )
    return board(
        config,
        "overview",
        "Inkwell / Service overview",
        "Is Inkwell meeting its SLOs, and if not, which routes are failing or slow.",
        variables=[*scope_variables(config), route],
        rows=[
            (f"SLOs over {config.slo_period}", [*availability(config), *latency(config)]),
            ("Requests", requests(config)),
            ("Live updates", live(config)),
        ],
    )


def burn(config: Config) -> list[tuple[float | None, str]]:
    return [(None, "green"), (1.0, "orange"), (config.burn_rate_windows[0].factor, "red")]


def availability(config: Config) -> list[Panel]:
    budget = 1 - config.availability_target
    errors = series.errors_ratio(config, config.slo_period)(*q.CHOSEN_RELEASE)
    return [
        single(
            "Availability",
            f"Share of requests (probes excluded) not answered 5xx over {config.slo_period}. "
            f"Objective: {config.availability_target:.1%}.",
            q.attainment(errors),
            unit="percentunit",
            steps=[(None, "red"), (config.availability_target, "green")],
            decimals=3,
            width=4,
        ),
        single(
            "Availability error budget left",
            f"Share of the {budget:.2%} of failed requests the SLO allows over "
            f"{config.slo_period} that is not spent yet. Below 0 the SLO is missed.",
            q.budget_left(errors, budget),
            unit="percentunit",
            steps=REMAINING,
            decimals=1,
            width=4,
        ),
        single(
            "Availability burn rate (1h)",
            "How many times faster than sustainable the availability budget burned over the last hour; "
            f"1 spends exactly the budget in {config.slo_period}, "
            f"{config.burn_rate_windows[0].factor:g} pages.",
            q.burn_rate(series.errors_ratio(config, "1h")(*q.CHOSEN_RELEASE), budget),
            unit="x",
            steps=burn(config),
            decimals=2,
            width=4,
        ),
    ]


def latency(config: Config) -> list[Panel]:
    budget = 1 - config.latency_target
    threshold = config.latency_threshold_seconds
    slow = series.slow_ratio(config, config.slo_period)(*q.CHOSEN_RELEASE)
    return [
        single(
            f"Requests under {threshold:g}s",
            f"Share of requests answered within {threshold:g}s over {config.slo_period}. "
            f"Objective: {config.latency_target:.0%}.",
            q.attainment(slow),
            unit="percentunit",
            steps=[(None, "red"), (config.latency_target, "green")],
            decimals=3,
            width=4,
        ),
        single(
            "Latency error budget left",
            f"Share of the {budget:.0%} of slow requests the SLO allows over {config.slo_period} "
            "that is not spent yet. Below 0 the SLO is missed.",
            q.budget_left(slow, budget),
            unit="percentunit",
            steps=REMAINING,
            decimals=1,
            width=4,
        ),
        single(
            "Latency burn rate (1h)",
            "How many times faster than sustainable the latency budget burned over the last hour.",
            q.burn_rate(series.slow_ratio(config, "1h")(*q.CHOSEN_RELEASE), budget),
            unit="x",
            steps=burn(config),
            decimals=2,
            width=4,
        ),
    ]


def requests(config: Config) -> list[Panel]:
    routes = q.chosen_routes(config)
    slower = [(None, "green"), (config.latency_threshold_seconds, "red")]
    return [
        graph(
            "Request rate by route",
            "Requests per second by route template (probes excluded), stacked.",
            [(q.request_rate(routes, window=RATE, by=["handler"]), "{{handler}}")],
            unit="reqps",
            stacked=True,
        ),
        graph(
            "Error ratio by route",
            "Share of each route's requests answered 5xx. The dashed line is the availability SLO's "
            "allowance; a route above it spends the budget.",
            [(q.error_ratio(routes, window=RATE, by=["handler"]), "{{handler}}")],
            unit="percentunit",
            steps=[(None, "green"), (1 - config.availability_target, "red")],
        ),
        graph(
            "Latency percentiles",
            "p50, p95 and p99 of all chosen routes. Exemplars (dots) carry trace ids: click one to open "
            "its trace. The dashed line is the latency SLO's threshold.",
            [(q.latency_quantile(phi, routes, window=RATE), percentile(phi)) for phi in (0.5, 0.95, 0.99)],
            unit="s",
            steps=slower,
            exemplars=True,
        ),
        graph(
            "p99 latency by route",
            f"The slowest routes at the 99th percentile (the {config.routes_shown} slowest shown).",
            [(q.slowest_routes(config, 0.99, routes, window=RATE), "{{handler}}")],
            unit="s",
            steps=slower,
        ),
        graph(
            "Responses by status class",
            "Requests per second by status class: 4xx are clients' mistakes, 5xx are ours.",
            [(q.request_rate(routes, window=RATE, by=["status"]), "{{status}}")],
            unit="reqps",
            stacked=True,
        ),
        graph(
            "In-flight requests",
            "Requests being served right now, summed over pods (probes included). A climb with flat "
            "traffic means requests are waiting on something.",
            [(q.in_flight(q.chosen(config)), "in flight")],
            unit="short",
        ),
        graph(
            "Rate-limited requests by policy",
            "Requests refused with 429 per second by each rate limit policy (docs/ratelimits.md): "
            "reads, writes, registration and login per client, login_account for an account's failed "
            "logins backing off. Unchecked: its store (Redis) did not answer, so logins were refused "
            "with 503 and the rest let through.",
            [
                (q.rate_limit_checks([*q.chosen(config), q.LIMITED], window=RATE), "{{policy}} limited"),
                (q.rate_limit_checks([*q.chosen(config), q.STORE_DOWN], window=RATE), "{{policy}} unchecked"),
            ],
            unit="reqps",
        ),
    ]


def live(config: Config) -> list[Panel]:
    """The /api/live WebSockets (docs/live-operations.md): who listens, what flows, how late, why
    sockets close, and whether each pod hears the bus."""
    chosen = q.chosen(config)
    lag = config.live_lag_threshold_seconds * 1000
    return [
        graph(
            "Open live connections",
            "WebSockets open on /api/live, per pod, stacked: the top is the release's total. A drop to "
            "zero on one pod with the others flat is a drain or a lost bus on that pod.",
            [(q.live_connections(chosen, by=["pod"]), "{{pod}}")],
            unit="short",
            width=8,
            stacked=True,
        ),
        graph(
            "Live subscriptions by kind",
            "Topics subscribed to, summed over pods: article (an open article page) and me (a "
            "signed-in user's notifications).",
            [(q.live_subscriptions(chosen), "{{kind}}")],
            unit="short",
            width=8,
        ),
        graph(
            "Live events published and delivered",
            "Events per second published to the bus after their writes commit, and frames per second "
            "delivered to sockets (one event reaches every socket subscribed to its topic), by type.",
            [
                (q.live_published(chosen, window=RATE, by=["type"]), "published {{type}}"),
                (q.live_delivered(chosen, window=RATE, by=["type"]), "delivered {{type}}"),
            ],
            unit="ops",
            width=8,
        ),
        graph(
            "Live delivery lag",
            "From a write's commit to its frame leaving the pod, p50 and p99 over every socket. "
            "Favourite counts wait up to the coalescing second; comments go out within milliseconds. "
            "The dashed line is InkwellLiveDeliveryLagHigh's threshold.",
            [
                (q.milliseconds(q.live_lag_quantile(phi, chosen, window=RATE)), percentile(phi))
                for phi in (0.5, 0.99)
            ],
            unit="ms",
            steps=[(None, "green"), (lag / 2, "orange"), (lag, "red")],
        ),
        graph(
            "Live disconnects by reason",
            "Sockets closed per second, by why: client, drain and idle are routine; bus_lost, "
            "slow_consumer, expired, deactivated, limit, protocol and unauthenticated are the service "
            "closing them (InkwellLiveMassDisconnects counts those).",
            [(q.live_disconnects(chosen, window=RATE), "{{reason}}")],
            unit="ops",
            stacked=True,
        ),
        graph(
            "Live bus reader up",
            "1 while a pod's Redis Streams reader is connected; 0 on a pod whose listeners hear nothing "
            "and whose new sockets are refused (1013). Without Redis (one process) the in-process bus is always 1.",
            [(q.live_bus_up(chosen), "{{pod}}")],
            unit="short",
            steps=[(None, "red"), (1.0, "green")],
            maximum=1,
        ),
        graph(
            "Live publish failures",
            "Events per second the bus did not take after their writes committed: no listener on any "
            "pod hears of those writes (InkwellLivePublishFailing).",
            [(q.live_publish_failures(chosen, window=RATE), "failed")],
            unit="ops",
            steps=[(None, "green"), (0.001, "red")],
        ),
    ]


def percentile(phi: float) -> str:
    return f"p{round(phi * 100)}"


def dependencies(config: Config = CONFIG) -> models.Dashboard:
    return board(
        config,
        "dependencies",
        "Inkwell / Dependencies",
        "The database as Inkwell sees it: connection pool saturation, waits and connections against the "
        "budget, the read replica's lag and the reads it takes, query latency.",
        variables=scope_variables(config),
        rows=[
            ("Connection pool", pool(config)),
            ("Read replica (when configured)", read_replica(config)),
            ("Response cache (Redis when configured)", cache(config)),
            ("Queries", database_queries(config)),
            ("Password hashing", password_hashing(config)),
        ],
    )


def password_hashing(config: Config) -> list[Panel]:
    here = q.chosen(config)
    return [
        graph(
            "Password hashes waiting and refused",
            "Logins, registrations and password changes whose Argon2 hash found every slot of its process "
            "taken (INKWELL_ARGON2_MAX_CONCURRENT, sized from the pod's memory limit) and waited, and "
            "those refused with 503 after INKWELL_ARGON2_WAIT_SECONDS. Refusals: a login wave past what "
            "the pods' memory holds; add pods or memory.",
            [
                (q.per_second(series.PASSWORD_HASH_WAITS, here, window=RATE), "waited"),
                (q.per_second(series.PASSWORD_HASH_REFUSALS, here, window=RATE), "refused"),
            ],
            unit="ops",
            width=24,
            steps=[(None, "green"), (0.001, "red")],
        ),
    ]


# A pod with a replica configured has a second pool, to the replica: its lines are named so and
# absent without one, so the common case reads as before.
def pool(config: Config) -> list[Panel]:
    primary, replica = [*q.chosen(config), q.PRIMARY], [*q.chosen(config), q.REPLICA]
    return [
        graph(
            "Pool saturation",
            "Connections checked out over the pool's size, per pod, to the primary and (lines named "
            "replica) to the replica where one is configured. At 100% requests open overflow "
            "connections or wait; the DatabasePoolExhausted alert fires when a pool stays there.",
            [(q.pool_saturation(primary), "{{pod}}"), (q.pool_saturation(replica), "{{pod}} replica")],
            unit="percentunit",
            steps=[(None, "green"), (0.8, "orange"), (1.0, "red")],
        ),
        graph(
            "Connections",
            "Connections in use, beyond the pool (overflow) and the pool's size, summed over pods; to the "
            "replica too where one is configured (its own max_connections counts those).",
            [
                (q.total(series.DB_POOL_CHECKED_OUT, primary), "in use"),
                (q.total(series.DB_POOL_OVERFLOW, primary), "overflow"),
                (q.total(series.DB_POOL_SIZE, primary), "pool size"),
                (q.total(series.DB_POOL_CHECKED_OUT, replica), "replica in use"),
                (q.total(series.DB_POOL_OVERFLOW, replica), "replica overflow"),
                (q.total(series.DB_POOL_SIZE, replica), "replica pool size"),
            ],
            unit="short",
        ),
        graph(
            "Connections against the budget",
            "Connections open to the primary (in use or idle in a pool: what its max_connections "
            "counts) per pod and over all pods, those in use, and the budget the chart sized the pools "
            "for (database.maxConnections less the reserved and the migration's). The budget holds "
            "at the HPA's maximum plus a rollout's surge; InkwellDatabaseConnectionBudget fires past "
            f"{config.connection_budget_warning:.0%} of it. A replica's connections are not counted: "
            "they hold the replica's slots. No budget line: the release does not set "
            "INKWELL_DB_CONNECTION_BUDGET.",
            [
                (q.connection_budget(q.chosen(config)), "budget"),
                (q.connection_budget_warning(config, q.chosen(config)), "alert threshold"),
                (q.open_connections(primary), "open, all pods"),
                (q.total(series.DB_POOL_CHECKED_OUT, primary), "in use, all pods"),
                (q.open_connections(primary, by=["pod"]), "open {{pod}}"),
            ],
            unit="short",
        ),
        graph(
            "Wait for a connection",
            "How long requests waited to check out a connection (p50, p99), from the primary's pool and "
            "the replica's where one is configured. Anything but near zero means the pool is too small "
            "for the load, or queries hold connections too long.",
            [
                *((q.pool_wait_quantile(phi, primary, window=RATE), percentile(phi)) for phi in (0.5, 0.99)),
                *(
                    (q.pool_wait_quantile(phi, replica, window=RATE), f"replica {percentile(phi)}")
                    for phi in (0.5, 0.99)
                ),
            ],
            unit="s",
            steps=[(None, "green"), (0.05, "red")],
        ),
    ]


def read_replica(config: Config) -> list[Panel]:
    here = q.chosen(config)
    limit = config.replica_lag_limit_seconds
    return [
        graph(
            "Replica lag",
            "How far the replica's replay is behind the primary, as each pod reads it every "
            "INKWELL_DB_REPLICA_CHECK_SECONDS (the worst of its processes), and the lag limit the pods are "
            "set with (INKWELL_DB_READ_MAX_LAG_SECONDS) past which the replica serves no read; "
            "InkwellReplicaLagging counts from half of it. The colours: the same for the default limit "
            f"({limit:g}s). No data: no replica configured.",
            [
                (q.replica_lag(series.DB_REPLICA_LAG, here, by=["pod"]), "{{pod}}"),
                (q.replica_lag_limit(here, by=[]), "lag limit"),
            ],
            unit="s",
            steps=[(None, "green"), (config.replica_lag_alert_seconds, "orange"), (limit, "red")],
        ),
        graph(
            "Replica lag in bytes",
            "WAL the primary has written that the replica has not replayed, as each pod reads it. Bytes "
            "growing while the lag in seconds stays low is a burst of writes being caught up; both "
            "growing, a replica that cannot keep up. No data: no replica configured.",
            [(q.replica_lag(series.DB_REPLICA_LAG_BYTES, here, by=["pod"]), "{{pod}}")],
            unit="bytes",
        ),
        graph(
            "Reads per second by database and reason",
            "Read-only units of work (GET and HEAD) by where they ran, stacked: on the replica once it "
            "had replayed what they must see (replayed), or on the primary for the reader's own recent "
            "write (own_write), a cached scope's recent write (cache_fill), a replica too far behind "
            "(lagging) or not answering as a replica (unavailable). No data: no replica configured.",
            [(q.read_rate(here, window=RATE), "{{database}} {{reason}}")],
            unit="ops",
            stacked=True,
        ),
        graph(
            "Replica up by pod",
            "1 while the pod's processes find the replica answering as a replica within the lag limit "
            "and send it reads; 0 while any of them does not (InkwellReplicaUnavailable fires after "
            f"{config.replica_unavailable_for}). No data: no replica configured.",
            [(q.replica_up(here, by=["pod"]), "{{pod}}")],
            unit="short",
            steps=[(None, "red"), (1.0, "green")],
            maximum=1,
        ),
    ]


def cache(config: Config) -> list[Panel]:
    here = q.chosen(config)
    return [
        graph(
            "Cache hit ratio by scope",
            "Share of anonymous public reads (article lists, articles, comments, tags) answered from the "
            "cache. Every write invalidates its scope, so a write-heavy minute lowers it.",
            [(q.cache_hit_ratio(here, window=RATE), "{{scope}}")],
            unit="percentunit",
            minimum=0,
            maximum=1,
        ),
        graph(
            "Cache failures by operation",
            "Failed reads, stores and invalidations of the cache (Redis unreachable or slow). Reads then "
            "go to the database; writes are refused with 503 until Redis answers again.",
            [(q.cache_failure_rate(here, window=RATE), "{{operation}}")],
            unit="ops",
            steps=[(None, "green"), (0.001, "red")],
        ),
    ]


def database_queries(config: Config) -> list[Panel]:
    here = q.chosen(config)
    return [
        graph(
            "Query latency by operation (p95)",
            "95th percentile of SQL statement duration by operation, measured around the driver call.",
            [(q.query_duration_quantile(0.95, here, window=RATE), "{{operation}}")],
            unit="s",
            steps=[(None, "green"), (0.1, "red")],
        ),
        graph(
            "Queries per second by operation",
            "SQL statements per second by operation, summed over pods.",
            [(q.query_rate(here, window=RATE), "{{operation}}")],
            unit="ops",
            stacked=True,
        ),
    ]


def kubernetes(config: Config = CONFIG) -> models.Dashboard:
    workload = label_variable(
        "workload", "Deployment", series.BUILD_INFO(*q.chosen(config)), label="service", hide=True
    )
    return board(
        config,
        "kubernetes",
        "Inkwell / Kubernetes",
        "Inkwell's Deployment, autoscaler and pods, from kube-state-metrics and cAdvisor.",
        variables=[*scope_variables(config), workload],
        rows=[("Replicas", replicas(config)), ("Resources", resources(config))],
    )


def replicas(config: Config) -> list[Panel]:
    deployment, hpa = q.CHOSEN_DEPLOYMENT, q.CHOSEN_AUTOSCALER
    return [
        graph(
            "Replicas",
            "Desired, updated, ready and available replicas of the Deployment. Ready below desired for "
            "long is a stuck rollout or crashing pods: `inkwell-ops diagnose`.",
            [
                (series.DEPLOYMENT_SPEC_REPLICAS(*deployment), "desired"),
                (series.DEPLOYMENT_REPLICAS_UPDATED(*deployment), "updated"),
                (series.DEPLOYMENT_REPLICAS_READY(*deployment), "ready"),
                (series.DEPLOYMENT_REPLICAS_AVAILABLE(*deployment), "available"),
            ],
            unit="short",
        ),
        graph(
            "Autoscaler",
            "The HPA's current and desired replicas between its min and max. Pinned at max means it "
            "cannot add capacity (InkwellHPAAtMaximum).",
            [
                (series.HPA_CURRENT_REPLICAS(*hpa), "current"),
                (series.HPA_DESIRED_REPLICAS(*hpa), "desired"),
                (series.HPA_MIN_REPLICAS(*hpa), "min"),
                (series.HPA_MAX_REPLICAS(*hpa), "max"),
            ],
            unit="short",
        ),
        graph(
            "Autoscaler metrics: current against target",
            "Each metric the HPA scales on, its current value against its target (CPU utilisation in "
            "percent of requests, requests per second per pod).",
            [
                (series.HPA_METRIC_CURRENT(*hpa), "{{metric_name}} {{metric_target_type}} current"),
                (series.HPA_METRIC_TARGET(*hpa), "{{metric_name}} {{metric_target_type}} target"),
            ],
            unit="short",
        ),
        graph(
            "Container restarts (1h)",
            "Restarts of each pod's container over the last hour. Any: see the pod's last termination "
            "reason with `inkwell-ops status`.",
            [(q.restarts(q.chosen_pods(config), window="1h"), "{{pod}}")],
            unit="short",
            steps=[(None, "green"), (1.0, "orange"), (float(config.restarts_threshold), "red")],
        ),
    ]


def resources(config: Config) -> list[Panel]:
    pods = q.chosen_pods(config)
    return [
        graph(
            "CPU against requests and limits",
            "CPU cores used by each pod, with its request and limit.",
            [
                (q.cpu_usage(pods, window=RATE), "{{pod}}"),
                (q.reserved(series.CONTAINER_REQUESTS, "cpu", pods), "request {{pod}}"),
                (q.reserved(series.CONTAINER_LIMITS, "cpu", pods), "limit {{pod}}"),
            ],
            unit="short",
        ),
        graph(
            "Memory against requests and limits",
            "Working set of each pod (what the OOM killer counts), with its request and limit.",
            [
                (q.memory_working_set(pods), "{{pod}}"),
                (q.reserved(series.CONTAINER_REQUESTS, "memory", pods), "request {{pod}}"),
                (q.reserved(series.CONTAINER_LIMITS, "memory", pods), "limit {{pod}}"),
            ],
            unit="bytes",
        ),
        graph(
            "CPU throttling",
            "Share of CFS periods in which the container was throttled. Above a few percent the CPU "
            "limit is adding latency: raise it or remove it.",
            [(q.cpu_throttling(pods, window=RATE), "{{pod}}")],
            unit="percentunit",
            steps=[(None, "green"), (0.05, "orange"), (0.25, "red")],
            width=24,
        ),
    ]


def business(config: Config = CONFIG) -> models.Dashboard:
    return board(
        config,
        "business",
        "Inkwell / Business",
        "What people do on Inkwell: sign-ups, sign-ins, writing.",
        variables=scope_variables(config),
        rows=[("Last 24 hours", last_day(config)), ("Per minute", per_minute(config))],
    )


def last_day(config: Config) -> list[Panel]:
    here = q.chosen(config)

    def counted(title: str, what: str, of: Series) -> Panel:
        return single(
            title,
            f"{what} in the last 24 hours.",
            q.counted(of, here, window="1d"),
            unit="short",
            steps=[(None, "blue")],
            decimals=0,
        )

    return [
        counted("Registrations", "Users registered", series.REGISTRATIONS),
        counted("Articles published", "Articles published", series.ARTICLES_PUBLISHED),
        counted("Comments", "Comments written", series.COMMENTS_CREATED),
        single(
            "Refused logins",
            "Share of login attempts refused in the last 24 hours. A jump is a broken client or "
            "credential stuffing.",
            q.refused_login_ratio(here, window="1d"),
            unit="percentunit",
            steps=[(None, "green"), (0.2, "orange"), (0.5, "red")],
            decimals=1,
        ),
    ]


def per_minute(config: Config) -> list[Panel]:
    here = q.chosen(config)
    return [
        graph(
            "Registrations and logins",
            "Registrations and successful logins per minute.",
            [
                (q.per_minute(series.REGISTRATIONS, here, window=RATE), "registrations"),
                (q.per_minute(series.LOGINS, here, window=RATE), "logins"),
            ],
            unit="opm",
        ),
        graph(
            "Refused logins by reason",
            "Refused logins per minute: unknown user, wrong password, deactivated account.",
            [(q.per_minute(series.LOGIN_FAILURES, here, window=RATE, by=["reason"]), "{{reason}}")],
            unit="opm",
            stacked=True,
        ),
        graph(
            "Articles and comments",
            "Articles published and comments written per minute (counted when their transaction commits).",
            [
                (q.per_minute(series.ARTICLES_PUBLISHED, here, window=RATE), "articles"),
                (q.per_minute(series.COMMENTS_CREATED, here, window=RATE), "comments"),
            ],
            unit="opm",
            width=24,
        ),
    ]


DASHBOARDS = {
    "overview": overview,
    "dependencies": dependencies,
    "kubernetes": kubernetes,
    "business": business,
}
