"""Recording rules and alerts, as the `groups` of Prometheus rule files (and of a PrometheusRule)."""

from __future__ import annotations

from typing import Any

from dashboards.config import CONFIG, Config, seconds

Rule = dict[str, Any]
Group = dict[str, Any]

REQUESTS = "http_requests_total"
DURATION = "http_request_duration_seconds"


def selector(config: Config, *extra: str) -> str:
    """The service's user traffic: its series, without the probes."""
    return "{" + ", ".join([config.selector, f'handler!~"{config.excluded_handlers}"', *extra]) + "}"


def rate_name(config: Config) -> str:
    return f"{config.level}:inkwell_http_requests:rate"


def errors_name(config: Config) -> str:
    return f"{config.level}:inkwell_http_requests_errors:ratio_rate"


def slow_name(config: Config) -> str:
    return f"{config.level}:inkwell_http_requests_slow:ratio_rate"


def quantile_name(config: Config) -> str:
    return f"{config.level}:{DURATION}:histogram_quantile_5m"


def sli_rules(config: Config, window: str) -> list[Rule]:
    by = f"sum by ({config.by})"
    requests = f"{by} (rate({REQUESTS}{selector(config)}[{window}]))"
    server_errors = selector(config, 'status="5xx"')
    # `or ... 0 *` keeps the ratio at 0, not absent, while there has never been a 5xx.
    errors = f"({by} (rate({REQUESTS}{server_errors}[{window}])) or 0 * {requests})"
    within = selector(config, f'le="{config.latency_threshold_seconds:g}"')
    fast = f"{by} (rate({DURATION}_bucket{within}[{window}]))"
    timed = f"{by} (rate({DURATION}_count{selector(config)}[{window}]))"
    return [
        {"record": f"{rate_name(config)}{window}", "expr": requests},
        {"record": f"{errors_name(config)}{window}", "expr": f"{errors}\n/\n{requests}"},
        {"record": f"{slow_name(config)}{window}", "expr": f"1 - (\n{fast}\n/\n{timed}\n)"},
    ]


def recording_groups(config: Config = CONFIG) -> list[Group]:
    windows = [rule for window in config.windows for rule in sli_rules(config, window)]
    quantiles = [
        {
            "record": quantile_name(config),
            "expr": f"histogram_quantile({q}, sum by ({config.by}, le) "
            f"(rate({DURATION}_bucket{selector(config)}[5m])))",
            "labels": {"quantile": str(q)},
        }
        for q in (0.5, 0.95, 0.99)
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


def burn_rate_alerts(config: Config, *, slo: str, name: str, target: float, what: str) -> list[Rule]:
    budget = 1 - target
    alerts = []
    for pair in config.burn_rate_windows:
        threshold = f"({pair.factor:g} * {budget:.6g})"
        alerts.append(
            {
                "alert": f"Inkwell{slo}BudgetBurn",
                "expr": f"{name}{pair.long} > {threshold}\nand\n{name}{pair.short} > {threshold}",
                "for": pair.for_,
                "labels": {"severity": pair.severity, "long": pair.long, "short": pair.short}
                | config.extra_labels,
                "annotations": {
                    "summary": f"Inkwell is burning its {slo.lower()} error budget {pair.factor:g}x too fast.",
                    "description": (
                        f"{{{{ $labels.release }}}} in {{{{ $labels.namespace }}}}: {what} is "
                        f"{{{{ $value | humanizePercentage }}}} over the last {pair.long} (and still over the "
                        f"last {pair.short}); the SLO allows {budget:.2%} over {config.slo_period}. At this "
                        f"rate the budget is gone in {_exhaustion(config, pair.factor)}."
                    ),
                    "runbook_url": config.runbook(f"Inkwell{slo}BudgetBurn"),
                },
            }
        )
    return alerts


def _exhaustion(config: Config, factor: float) -> str:
    hours = seconds(config.slo_period) / 3600 / factor
    return f"{hours:.0f} hours" if hours < 72 else f"{hours / 24:.0f} days"


def alert(
    config: Config, name: str, expr: str, for_: str, severity: str, summary: str, description: str
) -> Rule:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity} | config.extra_labels,
        "annotations": {"summary": summary, "description": description, "runbook_url": config.runbook(name)},
    }


def releases(config: Config) -> str:
    """One series per running release's Deployment (the Service, HPA and Deployment share its name),
    so kube-state-metrics series can be narrowed to Inkwell's objects."""
    return f"group by (namespace, service, release) (inkwell_build_info{{{config.selector}}})"


def alert_groups(config: Config = CONFIG) -> list[Group]:
    slo_alerts = burn_rate_alerts(
        config,
        slo="Availability",
        name=errors_name(config),
        target=config.availability_target,
        what="the share of requests answered 5xx",
    ) + burn_rate_alerts(
        config,
        slo="Latency",
        name=slow_name(config),
        target=config.latency_target,
        what=f"the share of requests slower than {config.latency_threshold_seconds:g}s",
    )
    where = "{{ $labels.release }} in {{ $labels.namespace }}"
    hpa = (
        "kube_horizontalpodautoscaler_status_current_replicas\n>= kube_horizontalpodautoscaler_spec_max_replicas\n"
        "and on (namespace, horizontalpodautoscaler)\n"
        f'label_replace({releases(config)}, "horizontalpodautoscaler", "$1", "service", "(.*)")\n'
        # Pinned on purpose (min = max, as `inkwell-ops scale --adjust-hpa` may leave it) is not news.
        "unless on (namespace, horizontalpodautoscaler)\n"
        "(kube_horizontalpodautoscaler_spec_min_replicas == kube_horizontalpodautoscaler_spec_max_replicas)"
    )
    no_pods = (
        "kube_deployment_status_replicas_available == 0\n"
        "and on (namespace, deployment) kube_deployment_spec_replicas > 0\n"
        "and on (namespace, deployment)\n"
        f"label_replace(group by (namespace, service) (last_over_time(inkwell_build_info{{{config.selector}}}"
        f'[{config.release_memory}])), "deployment", "$1", "service", "(.*)")'
    )
    others = [
        alert(
            config,
            "InkwellNoPodsAvailable",
            no_pods,
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
            f"up{{{config.selector}}} == 0",
            config.target_down_for,
            "warning",
            "Prometheus cannot scrape an Inkwell pod.",
            f"{{{{ $labels.pod }}}} ({where}) has not answered /metrics for {config.target_down_for}: "
            "it is down, overloaded, or the network policy blocks the scrape.",
        ),
        alert(
            config,
            "InkwellNoTraffic",
            # New pods have no request series until their first request: `or` gives them a 0.
            f"(\n{rate_name(config)}30m\nor on (namespace, release)\n"
            f"0 * group by (namespace, release) (inkwell_build_info{{{config.selector}}})\n) == 0",
            config.no_traffic_for,
            "warning",
            "Inkwell receives no requests.",
            f"{where} has served no request but probes for 30 minutes: the ingress, DNS or the Service "
            "may no longer route to it.",
        ),
        alert(
            config,
            "InkwellPodRestarting",
            f'increase(kube_pod_container_status_restarts_total{{container="{config.container}"}}'
            f"[{config.restarts_window}]) >= {config.restarts_threshold}",
            "0m",
            "warning",
            "An Inkwell container keeps restarting.",
            f'{{{{ $labels.pod }}}} in {{{{ $labels.namespace }}}} restarted {{{{ $value | printf "%.0f" }}}} times in '
            f"{config.restarts_window}.",
        ),
        alert(
            config,
            "InkwellHPAAtMaximum",
            hpa,
            config.hpa_at_max_for,
            "warning",
            "Inkwell's autoscaler is at its maximum.",
            "{{ $labels.horizontalpodautoscaler }} in {{ $labels.namespace }} has run at its maximum of "
            f"{{{{ $value }}}} replicas for {config.hpa_at_max_for}: it cannot add capacity.",
        ),
        alert(
            config,
            "InkwellDatabasePoolExhausted",
            f"sum by ({config.by}, pod) (inkwell_db_pool_checked_out{{{config.selector}}})\n>= "
            f"sum by ({config.by}, pod) (inkwell_db_pool_size{{{config.selector}}} > 0)",
            config.pool_exhausted_for,
            "warning",
            "An Inkwell pod has every pooled database connection in use.",
            f"{{{{ $labels.pod }}}} ({where}) has had {{{{ $value }}}} connections checked out, all of its pool, "
            f"for {config.pool_exhausted_for}: requests queue for a connection or open overflow ones.",
        ),
    ]
    return [{"name": "inkwell.slo.alerts", "rules": slo_alerts}, {"name": "inkwell.alerts", "rules": others}]
