"""Every PromQL expression the dashboards and the rules use, one small function per question, apart from
how panels and rules present them (as the kubernetes-mixin keeps its queries), so that a dashboard and
an alert asking the same thing ask it the same way."""

from __future__ import annotations

from collections.abc import Sequence

from dashboards import series
from dashboards.config import Config
from dashboards.promql import (
    Query,
    Series,
    copy_label,
    count_by,
    group_by,
    histogram_quantile,
    increase,
    last_over_time,
    max_by,
    max_over_time,
    min_by,
    on,
    rate,
    ratio,
    sum_by,
    topk,
)
from dashboards.series import HistogramSeries

Matchers = Sequence[str]
RATE = "$__rate_interval"  # Grafana's window: at least four scrape intervals, whatever the zoom


# Which series: every release's, as the rules read them, or those a dashboard's variables choose.
CHOSEN_RELEASE: Matchers = ('namespace="$namespace"', 'release="$release"')
CHOSEN_DEPLOYMENT: Matchers = ('namespace="$namespace"', 'deployment="$workload"')
CHOSEN_AUTOSCALER: Matchers = ('namespace="$namespace"', 'horizontalpodautoscaler="$workload"')


def service(config: Config) -> Matchers:
    return (config.selector,)


def users(config: Config) -> Matchers:
    """The service's requests that are users' traffic: the probes left out."""
    return (config.selector, f'handler!~"{config.excluded_handlers}"')


def chosen(config: Config) -> Matchers:
    return (config.selector, *CHOSEN_RELEASE)


def chosen_users(config: Config) -> Matchers:
    return (*chosen(config), f'handler!~"{config.excluded_handlers}"')


def chosen_routes(config: Config) -> Matchers:
    return (*chosen_users(config), 'handler=~"$route"')


def chosen_pods(config: Config) -> Matchers:
    # A Deployment's pods are named <deployment>-<ReplicaSet hash>-<suffix>.
    return (
        'namespace="$namespace"',
        'pod=~"$workload-[a-z0-9]+-[a-z0-9]+"',
        f'container="{config.container}"',
    )


# Counters and gauges of any kind.
def total(of: Series, matchers: Matchers, *, by: Sequence[str] = ()) -> Query:
    return sum_by(of(*matchers), *by)


def per_second(of: Series, matchers: Matchers, *, window: str, by: Sequence[str] = ()) -> Query:
    return sum_by(rate(of(*matchers), window), *by)


def per_minute(of: Series, matchers: Matchers, *, window: str, by: Sequence[str] = ()) -> Query:
    rated = rate(of(*matchers), window)
    grouping = f" by ({', '.join(rated.having(*by))})" if by else ""
    return Query(f"sum{grouping} ({rated}) * 60", frozenset(by))


def counted(of: Series, matchers: Matchers, *, window: str) -> Query:
    """How many events `of` counted over `window`."""
    return sum_by(increase(of(*matchers), window))


def quantile(
    of: HistogramSeries, phi: float, matchers: Matchers, *, window: str, by: Sequence[str] = ()
) -> Query:
    return histogram_quantile(phi, sum_by(rate(of.bucket(*matchers), window), *by, "le"))


# HTTP: rate, errors, latency.
def request_rate(matchers: Matchers, *, window: str, by: Sequence[str]) -> Query:
    return per_second(series.HTTP_REQUESTS, matchers, window=window, by=by)


def error_ratio(matchers: Matchers, *, window: str, by: Sequence[str]) -> Query:
    """The share of requests answered 5xx."""
    requests = request_rate(matchers, window=window, by=by)
    errors = request_rate([*matchers, 'status="5xx"'], window=window, by=by)
    # `or ... 0 *` keeps the ratio at 0, not absent, while there has never been a 5xx.
    return ratio(Query(f"({errors} or 0 * {requests})", requests.labels), requests)


def slow_ratio(matchers: Matchers, *, threshold: float, window: str, by: Sequence[str]) -> Query:
    """The share of requests slower than `threshold`, a bucket boundary of the latency histogram."""
    fast = per_second(series.HTTP_LATENCY.bucket, [*matchers, f'le="{threshold:g}"'], window=window, by=by)
    timed = per_second(series.HTTP_LATENCY.count, matchers, window=window, by=by)
    return Query(f"1 - (\n{ratio(fast, timed)}\n)", fast.labels)


def latency_quantile(phi: float, matchers: Matchers, *, window: str, by: Sequence[str] = ()) -> Query:
    return quantile(series.HTTP_LATENCY, phi, matchers, window=window, by=by)


def slowest_routes(config: Config, phi: float, matchers: Matchers, *, window: str) -> Query:
    return topk(config.routes_shown, latency_quantile(phi, matchers, window=window, by=["handler"]))


def in_flight(matchers: Matchers) -> Query:
    return total(series.HTTP_IN_FLIGHT, matchers)


# SLOs, from a recorded ratio of bad events.
def attainment(bad: Query) -> Query:
    """The share of good events."""
    return Query(f"1 - {bad}", bad.labels)


def budget_left(bad: Query, budget: float) -> Query:
    """The share of the error budget not spent yet; below 0 the SLO is missed."""
    return Query(f"1 - {bad} / {budget:.6g}", bad.labels)


def burn_rate(bad: Query, budget: float) -> Query:
    """How many times faster than sustainable the budget burns: 1 spends it exactly over the period."""
    return Query(f"{bad} / {budget:.6g}", bad.labels)


def burning(long: Query, short: Query, *, factor: float, budget: float) -> Query:
    """The budget burns `factor` times too fast over both windows."""
    threshold = f"({factor:g} * {budget:.6g})"
    return Query(f"{long} > {threshold}\nand\n{short} > {threshold}", long.labels)


# Whether the service runs: its targets, releases and pods, from Prometheus and kube-state-metrics.
def releases(config: Config) -> Query:
    """One series per running release's Deployment (the Service, HPA and Deployment share its name),
    so kube-state-metrics series can be narrowed to Inkwell's objects."""
    return group_by(series.BUILD_INFO(*service(config)), "namespace", "service", "release")


def target_down(config: Config) -> Query:
    up = series.UP(*service(config))
    return Query(f"{up} == 0", up.labels)


def no_traffic(config: Config, window: str) -> Query:
    requests = series.requests_rate(config, window)()
    # New pods have no request series until their first request: `or` gives them a 0.
    running = group_by(series.BUILD_INFO(*service(config)), *config.group_by)
    join = on(config.group_by, requests, running)
    return Query(f"(\n{requests}\nor {join}\n0 * {running}\n) == 0", requests.labels)


def no_pods_available(config: Config) -> Query:
    available = series.DEPLOYMENT_REPLICAS_AVAILABLE()
    desired = series.DEPLOYMENT_SPEC_REPLICAS()
    seen = last_over_time(series.BUILD_INFO(*service(config)), config.release_memory)
    # A release is Inkwell's if one of its pods reported build info lately, so the alert still knows
    # it once its last pod has gone.
    inkwell = copy_label(group_by(seen, "namespace", "service"), source="service", target="deployment")
    join = ("namespace", "deployment")
    return Query(
        f"{available} == 0\n"
        f"and {on(join, available, desired)} {desired} > 0\n"
        f"and {on(join, available, inkwell)}\n{inkwell}",
        available.labels,
    )


def restarts(matchers: Matchers, *, window: str) -> Query:
    return increase(series.CONTAINER_RESTARTS(*matchers), window)


def restarting(config: Config) -> Query:
    restarted = restarts([f'container="{config.container}"'], window=config.restarts_window)
    return Query(f"{restarted} >= {config.restarts_threshold}", restarted.labels)


def autoscaler_at_maximum(config: Config) -> Query:
    current, maximum, minimum = (
        series.HPA_CURRENT_REPLICAS(),
        series.HPA_MAX_REPLICAS(),
        series.HPA_MIN_REPLICAS(),
    )
    inkwell = copy_label(releases(config), source="service", target="horizontalpodautoscaler")
    join = ("namespace", "horizontalpodautoscaler")
    return Query(
        f"{current}\n>= {maximum}\nand {on(join, current, inkwell)}\n{inkwell}\n"
        # Pinned on purpose (min = max, as `inkwell-ops scale --adjust-hpa` may leave it) is not news.
        f"unless {on(join, current, minimum)}\n({minimum} == {maximum})",
        current.labels,
    )


# What its pods use, from cAdvisor and kube-state-metrics.
def cpu_usage(matchers: Matchers, *, window: str) -> Query:
    return per_second(series.CONTAINER_CPU, matchers, window=window, by=["pod"])


def memory_working_set(matchers: Matchers) -> Query:
    return total(series.CONTAINER_MEMORY_WORKING_SET, matchers, by=["pod"])


def reserved(of: Series, resource: str, matchers: Matchers) -> Query:
    """Each pod's request or limit (`of`) of `resource`."""
    return total(of, [*matchers, f'resource="{resource}"'], by=["pod"])


def cpu_throttling(matchers: Matchers, *, window: str) -> Query:
    """The share of CFS periods in which each pod's container was throttled."""
    throttled = sum_by(increase(series.CONTAINER_CPU_THROTTLED_PERIODS(*matchers), window), "pod")
    periods = sum_by(increase(series.CONTAINER_CPU_PERIODS(*matchers), window), "pod")
    return ratio(throttled, periods)


# The database and the cache. The pools' series carry the database they lead to: every process has
# one to the primary, and one to the replica when it is configured with one.
PRIMARY = 'database="primary"'
REPLICA = 'database="replica"'


def pool_saturation(matchers: Matchers) -> Query:
    """Connections checked out over the pool's size, per pod (`matchers` choosing one database)."""
    return ratio(
        total(series.DB_POOL_CHECKED_OUT, matchers, by=["pod"]),
        total(series.DB_POOL_SIZE, matchers, by=["pod"]),
    )


def pool_exhausted(config: Config) -> Query:
    # Each pool on its own: a full pool to the primary queues its requests however idle the
    # replica's is.
    by = [*config.group_by, "pod", "database"]
    checked_out = total(series.DB_POOL_CHECKED_OUT, service(config), by=by)
    size = series.DB_POOL_SIZE(*service(config))
    capacity = sum_by(Query(f"{size} > 0", size.labels), *by)
    return Query(f"{checked_out}\n>= {capacity}", checked_out.labels)


def open_connections(matchers: Matchers, *, by: Sequence[str] = ()) -> Query:
    """Connections open to a database, in use or idle: what its max_connections counts."""
    return total(series.DB_POOL_OPEN, matchers, by=by)


def connection_budget(matchers: Matchers, *, by: Sequence[str] = ()) -> Query:
    """The connections the release's pods may hold together to the primary, as each of them reports
    it; none while it is unknown (0: not set by the chart)."""
    budget = series.DB_CONNECTION_BUDGET(*matchers)
    return max_by(Query(f"{budget} > 0", budget.labels), *by)


def connection_budget_used(matchers: Matchers, *, by: Sequence[str] = ()) -> Query:
    """The share of the connection budget the release's pods hold open to the primary, whose budget
    it is: a replica's connections count against the replica's own max_connections."""
    return ratio(open_connections([*matchers, PRIMARY], by=by), connection_budget(matchers, by=by))


def connection_budget_warning(config: Config, matchers: Matchers) -> Query:
    """Where InkwellDatabaseConnectionBudget starts counting."""
    budget = connection_budget(matchers)
    return Query(f"{config.connection_budget_warning:g} * {budget}", budget.labels)


def connection_budget_running_out(config: Config) -> Query:
    used = connection_budget_used(service(config), by=config.group_by)
    return Query(f"{used}\n> {config.connection_budget_warning:g}", used.labels)


def pool_wait_quantile(phi: float, matchers: Matchers, *, window: str) -> Query:
    return quantile(series.DB_POOL_WAIT, phi, matchers, window=window)


# The read replica, where one is configured.
POD = ("namespace", "pod")


def replica_configured(matchers: Matchers) -> Query:
    """A series per pod configured with a replica: its pool to the replica. The replica's own gauges
    cannot say which pods have one: every process exports them, at 0 without a replica."""
    return series.DB_POOL_SIZE(*matchers, REPLICA)


def where_replica(query: Query, matchers: Matchers) -> Query:
    """`query`'s series of the pods configured with a replica, and none of the others'."""
    pools = replica_configured(matchers)
    return Query(f"{query}\nand {on(POD, query, pools)} {pools}", query.labels)


def replica_lag(of: Series, matchers: Matchers, *, by: Sequence[str]) -> Query:
    """How far the replica's replay is behind the primary (`of`: in seconds or in bytes), as the pods
    that read from it see it, the worst of them by `by`."""
    return max_by(where_replica(of(*matchers), matchers), *by)


def replica_up(matchers: Matchers, *, by: Sequence[str]) -> Query:
    """1 where every process sees the replica answering within the lag limit, 0 where one does not."""
    return min_by(where_replica(series.DB_REPLICA_UP(*matchers), matchers), *by)


def read_rate(matchers: Matchers, *, window: str) -> Query:
    """Read-only units of work per second by the database they ran on and why there."""
    reads = rate(series.DB_READS(*matchers), window)
    return sum_by(where_replica(reads, matchers), "database", "reason")


def replica_lag_limit(matchers: Matchers, *, by: Sequence[str]) -> Query:
    """The lag past which the replica serves no read, as the pods that read from it are set."""
    return max_by(where_replica(series.DB_REPLICA_LAG_LIMIT(*matchers), matchers), *by)


def replica_lagging(config: Config) -> Query:
    """The lag over a share of the release's own limit (INKWELL_DB_READ_MAX_LAG_SECONDS)."""
    lag = replica_lag(series.DB_REPLICA_LAG, service(config), by=config.group_by)
    limit = replica_lag_limit(service(config), by=config.group_by)
    return Query(f"{lag}\n> {config.replica_lag_warning:g} * {limit}", lag.labels)


def replica_unavailable(config: Config) -> Query:
    """The share of a release's pods configured with a replica that cannot read from it; none while
    every one of them can."""
    up = series.DB_REPLICA_UP(*service(config))
    down = count_by(where_replica(Query(f"{up} == 0", up.labels), service(config)), *config.group_by)
    return ratio(down, count_by(replica_configured(service(config)), *config.group_by))


def query_duration_quantile(phi: float, matchers: Matchers, *, window: str) -> Query:
    return quantile(series.DB_QUERY_DURATION, phi, matchers, window=window, by=["operation"])


def query_rate(matchers: Matchers, *, window: str) -> Query:
    return per_second(series.DB_QUERY_DURATION.count, matchers, window=window, by=["operation"])


def cache_hit_ratio(matchers: Matchers, *, window: str) -> Query:
    hits = per_second(series.CACHE_LOOKUPS, [*matchers, 'result="hit"'], window=window, by=["scope"])
    return ratio(hits, per_second(series.CACHE_LOOKUPS, matchers, window=window, by=["scope"]))


def cache_failure_rate(matchers: Matchers, *, window: str) -> Query:
    return per_second(series.CACHE_ERRORS, matchers, window=window, by=["operation"])


# Rate limits (service.ratelimit): every request a policy checks, by result.
LIMITED = 'result="limited"'
STORE_DOWN = 'result="unavailable"'


def rate_limit_checks(matchers: Matchers, *, window: str, by: Sequence[str] = ()) -> Query:
    return per_second(series.RATE_LIMIT_CHECKS, matchers, window=window, by=[*by, "policy"])


def rate_limited_share(matchers: Matchers, *, window: str, by: Sequence[str] = ()) -> Query:
    """The share of each policy's requests it refused with 429."""
    limited = rate_limit_checks([*matchers, LIMITED], window=window, by=by)
    return ratio(limited, rate_limit_checks(matchers, window=window, by=by))


def rate_limits_refusing(config: Config) -> Query:
    """Policies refusing a large share of a real flow of requests."""
    by, window = config.group_by, config.rate_limited_window
    share = rate_limited_share(service(config), window=window, by=by)
    checked = rate_limit_checks(service(config), window=window, by=by)
    return Query(
        f"({share}\n) > {config.rate_limited_share:g}\nand {checked} > {config.rate_limited_min_rps:g}",
        share.labels,
    )


# Live updates (/api/live): sockets, what they subscribe to, events through the bus and to sockets.
def live_connections(matchers: Matchers, *, by: Sequence[str] = ()) -> Query:
    return total(series.LIVE_CONNECTIONS, matchers, by=by)


def live_subscriptions(matchers: Matchers) -> Query:
    return total(series.LIVE_SUBSCRIPTIONS, matchers, by=["kind"])


def live_published(matchers: Matchers, *, window: str, by: Sequence[str] = ()) -> Query:
    return per_second(series.LIVE_EVENTS_PUBLISHED, matchers, window=window, by=by)


def live_delivered(matchers: Matchers, *, window: str, by: Sequence[str] = ()) -> Query:
    """Frames sent to sockets: one event reaches every socket subscribed to its topic."""
    return per_second(series.LIVE_EVENTS_DELIVERED, matchers, window=window, by=by)


def live_lag_quantile(phi: float, matchers: Matchers, *, window: str, by: Sequence[str] = ()) -> Query:
    return quantile(series.LIVE_DELIVERY_LAG, phi, matchers, window=window, by=by)


def milliseconds(seconds: Query) -> Query:
    return Query(f"1000 * {seconds}", seconds.labels)


def live_disconnects(matchers: Matchers, *, window: str, by: Sequence[str] = ()) -> Query:
    return per_second(series.LIVE_DISCONNECTS, matchers, window=window, by=[*by, "reason"])


def live_bus_up(matchers: Matchers) -> Query:
    return max_by(series.LIVE_BUS_UP(*matchers), "pod")


def live_publish_failures(matchers: Matchers, *, window: str, by: Sequence[str] = ()) -> Query:
    return per_second(series.LIVE_PUBLISH_FAILURES, matchers, window=window, by=by)


def live_lag_high(config: Config) -> Query:
    """p99 delivery lag over the threshold, while frames flow."""
    by, window = config.group_by, config.live_lag_window
    p99 = live_lag_quantile(0.99, service(config), window=window, by=by)
    flowing = per_second(series.LIVE_DELIVERY_LAG.count, service(config), window=window, by=by)
    return Query(
        f"{p99}\n> {config.live_lag_threshold_seconds:g}\nand {flowing} > {config.live_lag_min_rate:g}",
        p99.labels,
    )


def live_abnormal_disconnects(config: Config) -> Query:
    """Sockets closed over the window for a reason other than the client's, a drain's or idleness."""
    closed = series.LIVE_DISCONNECTS(*service(config), f'reason!~"{config.live_normal_disconnects}"')
    return sum_by(increase(closed, config.live_disconnect_window), *config.group_by)


def live_open_over(config: Config) -> Query:
    """The sockets open over the window: each pod's most, summed (those closed included)."""
    window = config.live_disconnect_window
    return sum_by(max_over_time(series.LIVE_CONNECTIONS(*service(config)), window), *config.group_by)


def live_mass_disconnects(config: Config) -> Query:
    closed = live_abnormal_disconnects(config)
    share = ratio(closed, live_open_over(config))
    return Query(
        f"({share}\n) > {config.live_disconnect_share:g}\nand {closed} >= {config.live_disconnect_min}",
        share.labels,
    )


def live_bus_down(config: Config) -> Query:
    """Pods whose bus reader is down, in releases where one was up lately (the pod itself or others)."""
    up = series.LIVE_BUS_UP(*service(config))
    seen = max_by(max_over_time(up, config.live_bus_memory), *config.group_by)
    return Query(f"{up} == 0\nand {on(config.group_by, up, seen)}\n{seen} == 1", up.labels)


def live_publish_failure_ratio(matchers: Matchers, *, window: str, by: Sequence[str]) -> Query:
    """The share of publishes the bus refused; a release that never published gets its failures'."""
    failed = live_publish_failures(matchers, window=window, by=by)
    published = live_published(matchers, window=window, by=by)
    attempts = Query(f"({failed} + ({published} or 0 * {failed}))", failed.labels)
    return ratio(failed, attempts)


def live_publish_failing(config: Config) -> Query:
    share = live_publish_failure_ratio(service(config), window=config.live_publish_window, by=config.group_by)
    return Query(f"({share}\n) > {config.live_publish_failure_share:g}", share.labels)


# What people do.
def refused_login_ratio(matchers: Matchers, *, window: str) -> Query:
    refused = counted(series.LOGIN_FAILURES, matchers, window=window)
    accepted = counted(series.LOGINS, matchers, window=window)
    return ratio(refused, Query(f"({refused} + {accepted})", refused.labels))
