"""Recording rules and alerts, as the `groups` of Prometheus rule files (and of a PrometheusRule)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dashboards import queries as q
from dashboards import series
from dashboards.config import CONFIG, Config, seconds
from dashboards.promql import Query, Series

Rule = dict[str, Any]
Group = dict[str, Any]


def record(recorded: Series, expr: Query, **labels: str) -> Rule:
    return {"record": recorded.name, "expr": expr.promql} | ({"labels": labels} if labels else {})


def sli_rules(config: Config, window: str) -> list[Rule]:
    users, by = q.users(config), config.group_by
    threshold = config.latency_threshold_seconds
    return [
        record(series.requests_rate(config, window), q.request_rate(users, window=window, by=by)),
        record(series.errors_ratio(config, window), q.error_ratio(users, window=window, by=by)),
        record(
            series.slow_ratio(config, window), q.slow_ratio(users, threshold=threshold, window=window, by=by)
        ),
    ]


def recording_groups(config: Config = CONFIG) -> list[Group]:
    windows = [rule for window in config.windows for rule in sli_rules(config, window)]
    quantiles = [
        record(
            series.latency_quantile(config),
            q.latency_quantile(phi, q.users(config), window="5m", by=config.group_by),
            quantile=str(phi),
        )
        for phi in (0.5, 0.95, 0.99)
    ]
    return [
        {"name": "inkwell.sli.rules", "rules": windows + quantiles},
        # The SLO period's ratios read 30 days of samples; every 5 minutes is often enough for them.
        {
            "name": "inkwell.slo-period.rules",
            "interval": "5m",
            "rules": sli_rules(config, config.slo_period)[1:],
        },
    ]


def burn_rate_alerts(
    config: Config, *, slo: str, ratio: Callable[[Config, str], Series], target: float, what: str
) -> list[Rule]:
    budget = 1 - target
    return [
        alert(
            config,
            f"Inkwell{slo}BudgetBurn",
            q.burning(
                ratio(config, pair.long)(), ratio(config, pair.short)(), factor=pair.factor, budget=budget
            ),
            pair.for_,
            pair.severity,
            f"Inkwell is burning its {slo.lower()} error budget {pair.factor:g}x too fast.",
            f"{{{{ $labels.release }}}} in {{{{ $labels.namespace }}}}: {what} is "
            f"{{{{ $value | humanizePercentage }}}} over the last {pair.long} (and still over the "
            f"last {pair.short}); the SLO allows {budget:.2%} over {config.slo_period}. At this "
            f"rate the budget is gone in {_exhaustion(config, pair.factor)}.",
            long=pair.long,
            short=pair.short,
        )
        for pair in config.burn_rate_windows
    ]


def _exhaustion(config: Config, factor: float) -> str:
    hours = seconds(config.slo_period) / 3600 / factor
    return f"{hours:.0f} hours" if hours < 72 else f"{hours / 24:.0f} days"


def alert(
    config: Config,
    name: str,
    expr: Query,
    for_: str,
    severity: str,
    summary: str,
    description: str,
    **labels: str,
) -> Rule:
    return {
        "alert": name,
        "expr": expr.promql,
        "for": for_,
        "labels": {"severity": severity, **labels} | config.extra_labels,
        "annotations": {"summary": summary, "description": description, "runbook_url": config.runbook(name)},
    }


def alert_groups(config: Config = CONFIG) -> list[Group]:
    slo_alerts = burn_rate_alerts(
        config,
        slo="Availability",
        ratio=series.errors_ratio,
        target=config.availability_target,
        what="the share of requests answered 5xx",
    ) + burn_rate_alerts(
        config,
        slo="Latency",
        ratio=series.slow_ratio,
        target=config.latency_target,
        what=f"the share of requests slower than {config.latency_threshold_seconds:g}s",
    )
    where = "{{ $labels.release }} in {{ $labels.namespace }}"
    others = [
        alert(
            config,
            "InkwellNoPodsAvailable",
            q.no_pods_available(config),
            config.no_pods_for,
            "critical",
            "No Inkwell pod is available: the API is down.",
            "{{ $labels.deployment }} in {{ $labels.namespace }} has had no available pod for "
            f"{config.no_pods_for}: every request through the ingress fails with 503, and the SLO "
            "alerts, which count the requests pods answer, see none of them.",
        ),
        alert(
            config,
            "InkwellTargetDown",
            q.target_down(config),
            config.target_down_for,
            "warning",
            "Prometheus cannot scrape an Inkwell pod.",
            f"{{{{ $labels.pod }}}} ({where}) has not answered /metrics for {config.target_down_for}: "
            "it is down, overloaded, or the network policy blocks the scrape.",
        ),
        alert(
            config,
            "InkwellNoTraffic",
            q.no_traffic(config, "30m"),
            config.no_traffic_for,
            "warning",
            "Inkwell receives no requests.",
            f"{where} has served no request but probes for 30 minutes: the ingress, DNS or the Service "
            "may no longer route to it.",
        ),
        alert(
            config,
            "InkwellPodRestarting",
            q.restarting(config),
            "0m",
            "warning",
            "An Inkwell container keeps restarting.",
            f'{{{{ $labels.pod }}}} in {{{{ $labels.namespace }}}} restarted {{{{ $value | printf "%.0f" }}}} times in '
            f"{config.restarts_window}.",
        ),
        alert(
            config,
            "InkwellHPAAtMaximum",
            q.autoscaler_at_maximum(config),
            config.hpa_at_max_for,
            "warning",
            "Inkwell's autoscaler is at its maximum.",
            "{{ $labels.horizontalpodautoscaler }} in {{ $labels.namespace }} has run at its maximum of "
            f"{{{{ $value }}}} replicas for {config.hpa_at_max_for}: it cannot add capacity.",
        ),
        alert(
            config,
            "InkwellDatabasePoolExhausted",
            q.pool_exhausted(config),
            config.pool_exhausted_for,
            "warning",
            "An Inkwell pod has every pooled database connection in use.",
            f"{{{{ $labels.pod }}}} ({where}) has had {{{{ $value }}}} connections to the "
            f"{{{{ $labels.database }}}} checked out, all of its pool, for {config.pool_exhausted_for}: "
            "requests queue for a connection or open overflow ones.",
        ),
        alert(
            config,
            "InkwellDatabaseConnectionBudget",
            q.connection_budget_running_out(config),
            config.connection_budget_for,
            "warning",
            "Inkwell's pods hold most of the database connections budgeted for them.",
            f"{where} has held {{{{ $value | humanizePercentage }}}} of its database connection budget "
            f"(INKWELL_DB_CONNECTION_BUDGET) open for {config.connection_budget_for}: past all of it the "
            "release takes the connections reserved for others, then PostgreSQL refuses new ones.",
        ),
        alert(
            config,
            "InkwellReplicaLagging",
            q.replica_lagging(config),
            config.replica_lag_for,
            "warning",
            "Inkwell's read replica is falling behind the primary.",
            f"The replica of {where} has been more than {config.replica_lag_warning:.0%} of its lag limit "
            f"behind the primary for {config.replica_lag_for} (now {{{{ $value | humanizeDuration }}}}): "
            "past the limit (INKWELL_DB_READ_MAX_LAG_SECONDS) it serves no read and every read goes to the primary.",
        ),
        alert(
            config,
            "InkwellReplicaUnavailable",
            q.replica_unavailable(config),
            config.replica_unavailable_for,
            "warning",
            "Inkwell's read replica serves no reads: the primary takes them all.",
            f"For {config.replica_unavailable_for}, {{{{ $value | humanizePercentage }}}} of the pods of "
            f"{where} configured with a replica have read nothing from it (it does not answer, is no "
            "longer a replica, or is further behind than its lag limit): the primary "
            "runs all their reads on top of its writes, through its own pools.",
        ),
        alert(
            config,
            "InkwellRateLimitRefusing",
            q.rate_limits_refusing(config),
            config.rate_limited_for,
            "warning",
            "An Inkwell rate limit policy refuses a large share of its requests.",
            f"The {{{{ $labels.policy }}}} policy of {where} has answered 429 to "
            f"{{{{ $value | humanizePercentage }}}} of the requests it checked over the last "
            f"{config.rate_limited_window}, for {config.rate_limited_for}: an attack or a misbehaving "
            "client, or a limit too low for real traffic.",
        ),
    ]
    return [
        {"name": "inkwell.slo.alerts", "rules": slo_alerts},
        {"name": "inkwell.alerts", "rules": others + live_alerts(config)},
    ]


def live_alerts(config: Config) -> list[Rule]:
    """Live updates (/api/live, docs/live-operations.md): late, dropped, cut off from the bus, lost."""
    where = "{{ $labels.release }} in {{ $labels.namespace }}"
    return [
        alert(
            config,
            "InkwellLiveDeliveryLagHigh",
            q.live_lag_high(config),
            config.live_lag_for,
            "warning",
            "Inkwell's live updates reach browsers late.",
            f"The p99 delivery lag of {where}, from a write's commit to its frame leaving the pod, has "
            f"been {{{{ $value | humanizeDuration }}}} over the last {config.live_lag_window}, above "
            f"{config.live_lag_threshold_seconds:g}s, for {config.live_lag_for}: open pages show new "
            "comments and counts that late.",
        ),
        alert(
            config,
            "InkwellLiveMassDisconnects",
            q.live_mass_disconnects(config),
            config.live_disconnect_for,
            "warning",
            "Inkwell keeps closing live update sockets its clients did not close.",
            f"{where} closed {{{{ $value | humanizePercentage }}}} of its open sockets over the last "
            f"{config.live_disconnect_window} (reasons other than {config.live_normal_disconnects.replace('|', ', ')}), "
            f"in every window for {config.live_disconnect_for}: clients reconnect, re-fetch and may "
            "miss events meanwhile.",
        ),
        alert(
            config,
            "InkwellLiveBusDown",
            q.live_bus_down(config),
            config.live_bus_down_for,
            "warning",
            "An Inkwell pod has lost the live updates bus (Redis Streams).",
            f"{{{{ $labels.pod }}}} ({where}) has had no Redis Streams reader for {config.live_bus_down_for}, "
            "where the release had one: its sockets are refused with 1013 and its listeners get no "
            "events; REST is unaffected.",
        ),
        alert(
            config,
            "InkwellLivePublishFailing",
            q.live_publish_failing(config),
            config.live_publish_for,
            "warning",
            "Inkwell fails to publish live update events.",
            f"{where} could not publish {{{{ $value | humanizePercentage }}}} of its events to the bus "
            f"over the last {config.live_publish_window}, for {config.live_publish_for}: the writes "
            "committed, but no listener on any pod hears of them.",
        ),
    ]
