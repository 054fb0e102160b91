"""The one place that says what Inkwell's series look like and what it promises (SLOs), so that the
dashboards, the recording rules and the alerts cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BurnRateWindow:
    """A multi-window burn-rate alert: it fires when the budget burns `factor` times too fast over
    both `long` (it matters) and `short` (it is still happening). The SRE workbook, chapter 5."""

    long: str
    short: str
    factor: float
    severity: str
    for_: str


@dataclass(frozen=True)
class Config:
    # Series of the service: the chart's ServiceMonitor relabels app.kubernetes.io/name to `app` and
    # app.kubernetes.io/instance to `release` (namespace comes from the target).
    selector: str = 'app="inkwell"'
    # Labels every aggregate keeps: one SLO per release.
    group_by: tuple[str, ...] = ("namespace", "release")
    # The container of the chart's pods, for kube-state-metrics and cAdvisor series.
    container: str = "inkwell"
    # Requests that are not users' traffic: probes (the /metrics scrape is not counted at all).
    excluded_handlers: str = "/healthz|/readyz"

    slo_period: str = "30d"
    availability_target: float = 0.999
    latency_target: float = 0.99
    # A histogram bucket boundary of http_request_duration_seconds.
    latency_threshold_seconds: float = 0.25

    burn_rate_windows: tuple[BurnRateWindow, ...] = (
        BurnRateWindow("1h", "5m", 14.4, "critical", "2m"),
        BurnRateWindow("6h", "30m", 6.0, "critical", "15m"),
        BurnRateWindow("1d", "2h", 3.0, "warning", "1h"),
        BurnRateWindow("3d", "6h", 1.0, "warning", "3h"),
    )

    # Other alerts.
    target_down_for: str = "5m"
    no_pods_for: str = "3m"
    # A release counts as Inkwell's if one of its pods reported build info this recently, so the
    # alert on a Deployment with no available pod still knows it after its last pod has gone.
    release_memory: str = "1d"
    no_traffic_for: str = "15m"
    restarts_threshold: int = 3
    restarts_window: str = "30m"
    hpa_at_max_for: str = "15m"
    pool_exhausted_for: str = "5m"
    # A share of the connections the chart sized the release's pools for (INKWELL_DB_CONNECTION_BUDGET).
    connection_budget_warning: float = 0.8
    connection_budget_for: str = "5m"
    # The service's lag limit as it ships (INKWELL_DB_READ_MAX_LAG_SECONDS): beyond it the replica
    # serves no read. Only the lag panel's colours use it; the alert reads each release's own
    # (inkwell_db_replica_lag_limit_seconds).
    replica_lag_limit_seconds: float = 5.0
    # A share of the limit: lag that stays this high is falling behind, and the alert comes while
    # the replica still serves reads, not once they have all moved to the primary.
    replica_lag_warning: float = 0.5
    replica_lag_for: str = "5m"
    replica_unavailable_for: str = "5m"
    # A rate limit policy refusing (429) more than this share of the requests it checks, over the
    # window, for the time below, while it checks at least the minimum rate (a lone client retrying
    # at night is not an alert).
    rate_limited_share: float = 0.25
    rate_limited_window: str = "10m"
    rate_limited_for: str = "15m"
    rate_limited_min_rps: float = 0.1

    # Live updates (/api/live). Delivery lag (commit to frame sent) whose p99 stays above the
    # threshold while at least the minimum of frames a second flows (a few events an hour say
    # nothing). Favourite counts are coalesced for up to INKWELL_LIVE_COALESCE_SECONDS (1 s), so a
    # healthy p99 sits near 1 s; comments go out within milliseconds.
    live_lag_threshold_seconds: float = 2.5
    live_lag_window: str = "5m"
    live_lag_min_rate: float = 0.1
    live_lag_for: str = "10m"
    # Closes other than the client's own, a drain's and an idle socket's, as a share of the sockets
    # open over the window, with at least the minimum count, in every window for `for`: one burst
    # (a Redis failover the clients reconnect after) is not an alert; closes that keep coming are.
    live_disconnect_share: float = 0.25
    live_disconnect_min: int = 20
    live_disconnect_window: str = "5m"
    live_disconnect_for: str = "10m"
    live_normal_disconnects: str = "client|drain|idle"
    # A pod whose bus reader is down while the release's pods had one up within this (a release
    # without Redis fans out in its one process, whose in-process bus is always up).
    live_bus_memory: str = "1d"
    live_bus_down_for: str = "3m"
    # The share of publishes the bus refused (events lost for every listener).
    live_publish_failure_share: float = 0.01
    live_publish_window: str = "5m"
    live_publish_for: str = "5m"

    # Where each alert's runbook_url points: <base>/<alert>.md. By default the runbooks that ship
    # with the chart's docs (docs/runbooks/, a path from the top of the source tree), as there is no
    # one place every installation serves them from; the chart's prometheusRule.runbookBaseUrl sets
    # the URL an installation publishes them at, and tests/deploy keeps the two defaults equal.
    runbook_base_url: str = "docs/runbooks"
    dashboard_uid_prefix: str = "inkwell"
    dashboard_tags: tuple[str, ...] = ("inkwell",)
    routes_shown: int = 10
    extra_labels: dict[str, str] = field(default_factory=dict)

    @property
    def windows(self) -> tuple[str, ...]:
        """Every window a rate is recorded over: the burn-rate pairs' windows, shortest first."""
        seen = {w for pair in self.burn_rate_windows for w in (pair.long, pair.short)}
        return tuple(sorted(seen, key=seconds))

    @property
    def by(self) -> str:
        return ", ".join(self.group_by)

    @property
    def level(self) -> str:
        """The `level` part of recording rule names (level:metric:operations)."""
        return "_".join(self.group_by)

    @property
    def replica_lag_alert_seconds(self) -> float:
        """Where InkwellReplicaLagging starts counting."""
        return self.replica_lag_warning * self.replica_lag_limit_seconds

    def runbook(self, alert: str) -> str:
        return f"{self.runbook_base_url}/{alert}.md"


def seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return int(duration[:-1]) * units[duration[-1]]


CONFIG = Config()
