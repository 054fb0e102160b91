"""The four Inkwell dashboards: service overview, dependencies, Kubernetes and business."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, stat
from grafana_foundation_sdk.models import dashboard as models

from dashboards import rules
from dashboards.config import CONFIG, Config
from dashboards.panels import board, graph, label_variable, scope_variables, single

RATE = "$__rate_interval"


def scope(config: Config) -> str:
    return f'{config.selector}, namespace="$namespace", release="$release"'


def traffic(config: Config, *extra: str) -> str:
    """Users' requests on the chosen routes: the service's series without the probes."""
    return (
        "{"
        + ", ".join([scope(config), f'handler!~"{config.excluded_handlers}"', 'handler=~"$route"', *extra])
        + "}"
    )


def overview(config: Config = CONFIG) -> models.Dashboard:
    here = '{namespace="$namespace", release="$release"}'
    availability_budget = 1 - config.availability_target
    latency_budget = 1 - config.latency_target
    errors30d = f"{rules.errors_name(config)}{config.slo_period}{here}"
    slow30d = f"{rules.slow_name(config)}{config.slo_period}{here}"
    objective = [(None, "red"), (config.availability_target, "green")]
    latency_objective = [(None, "red"), (config.latency_target, "green")]
    remaining = [(None, "red"), (0.0, "orange"), (0.25, "green")]
    burn = [(None, "green"), (1.0, "orange"), (config.burn_rate_windows[0].factor, "red")]
    threshold = config.latency_threshold_seconds
    by_route = f"sum by (handler) (rate(http_requests_total{traffic(config)}[{RATE}]))"
    failed = traffic(config, 'status="5xx"')
    route_errors = f"sum by (handler) (rate(http_requests_total{failed}[{RATE}]))"
    buckets = f"rate(http_request_duration_seconds_bucket{traffic(config)}[{RATE}])"
    return (
        board(
            config,
            "overview",
            "Inkwell / Service overview",
            "Is Inkwell meeting its SLOs, and if not, which routes are failing or slow.",
        )
        .variables(
            [
                *scope_variables(config),
                label_variable(
                    "route",
                    "Route",
                    f'http_requests_total{{{scope(config)}, handler!~"{config.excluded_handlers}"}}',
                    label="handler",
                    include_all=True,
                ),
            ]
        )
        .with_row(dashboard.Row(f"SLOs over {config.slo_period}"))
        .with_panel(
            single(
                "Availability",
                f"Share of requests (probes excluded) not answered 5xx over {config.slo_period}. "
                f"Objective: {config.availability_target:.1%}.",
                f"1 - {errors30d}",
                unit="percentunit",
                steps=objective,
                decimals=3,
                width=4,
            )
        )
        .with_panel(
            single(
                "Availability error budget left",
                f"Share of the {availability_budget:.2%} of failed requests the SLO allows over "
                f"{config.slo_period} that is not spent yet. Below 0 the SLO is missed.",
                f"1 - {errors30d} / {availability_budget:.6g}",
                unit="percentunit",
                steps=remaining,
                decimals=1,
                width=4,
            )
        )
        .with_panel(
            single(
                "Availability burn rate (1h)",
                "How many times faster than sustainable the availability budget burned over the last hour; "
                f"1 spends exactly the budget in {config.slo_period}, "
                f"{config.burn_rate_windows[0].factor:g} pages.",
                f"{rules.errors_name(config)}1h{here} / {availability_budget:.6g}",
                unit="x",
                steps=burn,
                decimals=2,
                width=4,
            )
        )
        .with_panel(
            single(
                f"Requests under {threshold:g}s",
                f"Share of requests answered within {threshold:g}s over {config.slo_period}. "
                f"Objective: {config.latency_target:.0%}.",
                f"1 - {slow30d}",
                unit="percentunit",
                steps=latency_objective,
                decimals=3,
                width=4,
            )
        )
        .with_panel(
            single(
                "Latency error budget left",
                f"Share of the {latency_budget:.0%} of slow requests the SLO allows over {config.slo_period} "
                "that is not spent yet. Below 0 the SLO is missed.",
                f"1 - {slow30d} / {latency_budget:.6g}",
                unit="percentunit",
                steps=remaining,
                decimals=1,
                width=4,
            )
        )
        .with_panel(
            single(
                "Latency burn rate (1h)",
                "How many times faster than sustainable the latency budget burned over the last hour.",
                f"{rules.slow_name(config)}1h{here} / {latency_budget:.6g}",
                unit="x",
                steps=burn,
                decimals=2,
                width=4,
            )
        )
        .with_row(dashboard.Row("Requests"))
        .with_panel(
            graph(
                "Request rate by route",
                "Requests per second by route template (probes excluded), stacked.",
                [(by_route, "{{handler}}")],
                unit="reqps",
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "Error ratio by route",
                "Share of each route's requests answered 5xx. The dashed line is the availability SLO's "
                "allowance; a route above it spends the budget.",
                [(f"({route_errors} or 0 * {by_route})\n/\n{by_route}", "{{handler}}")],
                unit="percentunit",
                steps=[(None, "green"), (availability_budget, "red")],
            )
        )
        .with_panel(
            graph(
                "Latency percentiles",
                "p50, p95 and p99 of all chosen routes. Exemplars (dots) carry trace ids: click one to open "
                "its trace. The dashed line is the latency SLO's threshold.",
                [
                    (f"histogram_quantile({q}, sum by (le) ({buckets}))", f"p{round(q * 100)}")
                    for q in (0.5, 0.95, 0.99)
                ],
                unit="s",
                steps=[(None, "green"), (threshold, "red")],
                exemplars=True,
            )
        )
        .with_panel(
            graph(
                "p99 latency by route",
                f"The slowest routes at the 99th percentile (the {config.routes_shown} slowest shown).",
                [
                    (
                        f"topk({config.routes_shown}, histogram_quantile(0.99, sum by (handler, le) ({buckets})))",
                        "{{handler}}",
                    )
                ],
                unit="s",
                steps=[(None, "green"), (threshold, "red")],
            )
        )
        .with_panel(
            graph(
                "Responses by status class",
                "Requests per second by status class: 4xx are clients' mistakes, 5xx are ours.",
                [(f"sum by (status) (rate(http_requests_total{traffic(config)}[{RATE}]))", "{{status}}")],
                unit="reqps",
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "In-flight requests",
                "Requests being served right now, summed over pods (probes included). A climb with flat "
                "traffic means requests are waiting on something.",
                [(f"sum(http_requests_inprogress{{{scope(config)}}})", "in flight")],
                unit="short",
            )
        )
        .build()
    )


def dependencies(config: Config = CONFIG) -> models.Dashboard:
    here = "{" + scope(config) + "}"
    pool_ratio = (
        f"sum by (pod) (inkwell_db_pool_checked_out{here})\n/\nsum by (pod) (inkwell_db_pool_size{here})"
    )
    return (
        board(
            config,
            "dependencies",
            "Inkwell / Dependencies",
            "The database as Inkwell sees it: connection pool saturation and waits, query latency.",
        )
        .variables(scope_variables(config))
        .with_row(dashboard.Row("Connection pool"))
        .with_panel(
            graph(
                "Pool saturation",
                "Connections checked out over the pool's size, per pod. At 100% requests open overflow "
                "connections or wait; the DatabasePoolExhausted alert fires when it stays there.",
                [(pool_ratio, "{{pod}}")],
                unit="percentunit",
                steps=[(None, "green"), (0.8, "orange"), (1.0, "red")],
            )
        )
        .with_panel(
            graph(
                "Connections",
                "Connections in use, beyond the pool (overflow) and the pool's size, summed over pods.",
                [
                    (f"sum(inkwell_db_pool_checked_out{here})", "in use"),
                    (f"sum(inkwell_db_pool_overflow{here})", "overflow"),
                    (f"sum(inkwell_db_pool_size{here})", "pool size"),
                ],
                unit="short",
            )
        )
        .with_panel(
            graph(
                "Wait for a connection",
                "How long requests waited to check out a connection (p50, p99). Anything but near zero means "
                "the pool is too small for the load, or queries hold connections too long.",
                [
                    (
                        f"histogram_quantile({q}, sum by (le) (rate(inkwell_db_pool_wait_seconds_bucket{here}[{RATE}])))",
                        f"p{round(q * 100)}",
                    )
                    for q in (0.5, 0.99)
                ],
                unit="s",
                steps=[(None, "green"), (0.05, "red")],
            )
        )
        .with_row(dashboard.Row("Response cache (Redis when configured)"))
        .with_panel(
            graph(
                "Cache hit ratio by scope",
                "Share of anonymous public reads (article lists, articles, comments, tags) answered from the "
                "cache. Every write invalidates its scope, so a write-heavy minute lowers it.",
                [
                    (
                        f'sum by (scope) (rate(inkwell_cache_lookups_total{{{scope(config)}, result="hit"}}[{RATE}]))\n/\n'
                        f"sum by (scope) (rate(inkwell_cache_lookups_total{here}[{RATE}]))",
                        "{{scope}}",
                    )
                ],
                unit="percentunit",
                minimum=0,
                maximum=1,
            )
        )
        .with_panel(
            graph(
                "Cache failures by operation",
                "Failed reads, stores and invalidations of the cache (Redis unreachable or slow). Reads then "
                "go to the database; writes are refused with 503 until Redis answers again.",
                [(f"sum by (operation) (rate(inkwell_cache_errors_total{here}[{RATE}]))", "{{operation}}")],
                unit="ops",
                steps=[(None, "green"), (0.001, "red")],
            )
        )
        .with_row(dashboard.Row("Queries"))
        .with_panel(
            graph(
                "Query latency by operation (p95)",
                "95th percentile of SQL statement duration by operation, measured around the driver call.",
                [
                    (
                        "histogram_quantile(0.95, sum by (operation, le) "
                        f"(rate(inkwell_db_query_duration_seconds_bucket{here}[{RATE}])))",
                        "{{operation}}",
                    )
                ],
                unit="s",
                steps=[(None, "green"), (0.1, "red")],
            )
        )
        .with_panel(
            graph(
                "Queries per second by operation",
                "SQL statements per second by operation, summed over pods.",
                [
                    (
                        f"sum by (operation) (rate(inkwell_db_query_duration_seconds_count{here}[{RATE}]))",
                        "{{operation}}",
                    )
                ],
                unit="ops",
                stacked=True,
            )
        )
        .build()
    )


def kubernetes(config: Config = CONFIG) -> models.Dashboard:
    ns = 'namespace="$namespace"'
    pods = f'{ns}, pod=~"$workload-[a-z0-9]+-[a-z0-9]+", container="{config.container}"'
    hpa = f'{ns}, horizontalpodautoscaler="$workload"'
    deployment = f'{ns}, deployment="$workload"'

    def resource(metric: str, resource: str) -> str:
        return f'sum by (pod) ({metric}{{{pods}, resource="{resource}"}})'

    return (
        board(
            config,
            "kubernetes",
            "Inkwell / Kubernetes",
            "Inkwell's Deployment, autoscaler and pods, from kube-state-metrics and cAdvisor.",
        )
        .variables(
            [
                *scope_variables(config),
                label_variable(
                    "workload",
                    "Deployment",
                    f"inkwell_build_info{{{scope(config)}}}",
                    label="service",
                    hide=True,
                ),
            ]
        )
        .with_row(dashboard.Row("Replicas"))
        .with_panel(
            graph(
                "Replicas",
                "Desired, updated, ready and available replicas of the Deployment. Ready below desired for "
                "long is a stuck rollout or crashing pods: `inkwell-ops diagnose`.",
                [
                    (f"kube_deployment_spec_replicas{{{deployment}}}", "desired"),
                    (f"kube_deployment_status_replicas_updated{{{deployment}}}", "updated"),
                    (f"kube_deployment_status_replicas_ready{{{deployment}}}", "ready"),
                    (f"kube_deployment_status_replicas_available{{{deployment}}}", "available"),
                ],
                unit="short",
            )
        )
        .with_panel(
            graph(
                "Autoscaler",
                "The HPA's current and desired replicas between its min and max. Pinned at max means it "
                "cannot add capacity (InkwellHPAAtMaximum).",
                [
                    (f"kube_horizontalpodautoscaler_status_current_replicas{{{hpa}}}", "current"),
                    (f"kube_horizontalpodautoscaler_status_desired_replicas{{{hpa}}}", "desired"),
                    (f"kube_horizontalpodautoscaler_spec_min_replicas{{{hpa}}}", "min"),
                    (f"kube_horizontalpodautoscaler_spec_max_replicas{{{hpa}}}", "max"),
                ],
                unit="short",
            )
        )
        .with_panel(
            graph(
                "Autoscaler metrics: current against target",
                "Each metric the HPA scales on, its current value against its target (CPU utilisation in "
                "percent of requests, requests per second per pod).",
                [
                    (
                        f"kube_horizontalpodautoscaler_status_target_metric{{{hpa}}}",
                        "{{metric_name}} {{metric_target_type}} current",
                    ),
                    (
                        f"kube_horizontalpodautoscaler_spec_target_metric{{{hpa}}}",
                        "{{metric_name}} {{metric_target_type}} target",
                    ),
                ],
                unit="short",
            )
        )
        .with_panel(
            graph(
                "Container restarts (1h)",
                "Restarts of each pod's container over the last hour. Any: see the pod's last termination "
                "reason with `inkwell-ops status`.",
                [(f"increase(kube_pod_container_status_restarts_total{{{pods}}}[1h])", "{{pod}}")],
                unit="short",
                steps=[(None, "green"), (1.0, "orange"), (float(config.restarts_threshold), "red")],
            )
        )
        .with_row(dashboard.Row("Resources"))
        .with_panel(
            graph(
                "CPU against requests and limits",
                "CPU cores used by each pod, with its request and limit.",
                [
                    (f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{pods}}}[{RATE}]))", "{{pod}}"),
                    (resource("kube_pod_container_resource_requests", "cpu"), "request {{pod}}"),
                    (resource("kube_pod_container_resource_limits", "cpu"), "limit {{pod}}"),
                ],
                unit="short",
            )
        )
        .with_panel(
            graph(
                "Memory against requests and limits",
                "Working set of each pod (what the OOM killer counts), with its request and limit.",
                [
                    (f"sum by (pod) (container_memory_working_set_bytes{{{pods}}})", "{{pod}}"),
                    (resource("kube_pod_container_resource_requests", "memory"), "request {{pod}}"),
                    (resource("kube_pod_container_resource_limits", "memory"), "limit {{pod}}"),
                ],
                unit="bytes",
            )
        )
        .with_panel(
            graph(
                "CPU throttling",
                "Share of CFS periods in which the container was throttled. Above a few percent the CPU "
                "limit is adding latency: raise it or remove it.",
                [
                    (
                        f"sum by (pod) (increase(container_cpu_cfs_throttled_periods_total{{{pods}}}[{RATE}]))\n/\n"
                        f"sum by (pod) (increase(container_cpu_cfs_periods_total{{{pods}}}[{RATE}]))",
                        "{{pod}}",
                    )
                ],
                unit="percentunit",
                steps=[(None, "green"), (0.05, "orange"), (0.25, "red")],
                width=24,
            )
        )
        .build()
    )


def business(config: Config = CONFIG) -> models.Dashboard:
    here = "{" + scope(config) + "}"

    def daily(title: str, what: str, metric: str) -> stat.Panel:
        return single(
            title,
            f"{what} in the last 24 hours.",
            f"sum(increase({metric}{here}[1d]))",
            unit="short",
            steps=[(None, "blue")],
            decimals=0,
        )

    def per_minute(metric: str, by: str = "") -> str:
        grouping = f" by ({by})" if by else ""
        return f"sum{grouping} (rate({metric}{here}[{RATE}])) * 60"

    return (
        board(
            config,
            "business",
            "Inkwell / Business",
            "What people do on Inkwell: sign-ups, sign-ins, writing.",
        )
        .variables(scope_variables(config))
        .with_row(dashboard.Row("Last 24 hours"))
        .with_panel(daily("Registrations", "Users registered", "inkwell_registrations_total"))
        .with_panel(daily("Articles published", "Articles published", "inkwell_articles_published_total"))
        .with_panel(daily("Comments", "Comments written", "inkwell_comments_created_total"))
        .with_panel(
            single(
                "Refused logins",
                "Share of login attempts refused in the last 24 hours. A jump is a broken client or "
                "credential stuffing.",
                f"sum(increase(inkwell_login_failures_total{here}[1d]))\n/\n"
                f"(sum(increase(inkwell_login_failures_total{here}[1d])) + sum(increase(inkwell_logins_total{here}[1d])))",
                unit="percentunit",
                steps=[(None, "green"), (0.2, "orange"), (0.5, "red")],
                decimals=1,
            )
        )
        .with_row(dashboard.Row("Per minute"))
        .with_panel(
            graph(
                "Registrations and logins",
                "Registrations and successful logins per minute.",
                [
                    (per_minute("inkwell_registrations_total"), "registrations"),
                    (per_minute("inkwell_logins_total"), "logins"),
                ],
                unit="opm",
            )
        )
        .with_panel(
            graph(
                "Refused logins by reason",
                "Refused logins per minute: unknown user, wrong password, deactivated account.",
                [(per_minute("inkwell_login_failures_total", "reason"), "{{reason}}")],
                unit="opm",
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "Articles and comments",
                "Articles published and comments written per minute (counted when their transaction commits).",
                [
                    (per_minute("inkwell_articles_published_total"), "articles"),
                    (per_minute("inkwell_comments_created_total"), "comments"),
                ],
                unit="opm",
                width=24,
            )
        )
        .build()
    )


DASHBOARDS = {
    "overview": overview,
    "dependencies": dependencies,
    "kubernetes": kubernetes,
    "business": business,
}
