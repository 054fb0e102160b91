"""Every series a query reads, named in one place: the service's from its own metric objects, the ones
the recording rules make from the rules' naming scheme, and the rest as their exporters document them."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from dashboards.config import Config
from dashboards.promql import Series
from service.observability import metrics

# Every scraped series gets these from Prometheus itself.
SCRAPE_LABELS = frozenset({"job", "instance"})
# The service's series also carry its target's labels (the Prometheus Operator's, from the pod and
# its Service) and the two the chart's ServiceMonitor relabels in (`app`, `release`).
TARGET_LABELS = SCRAPE_LABELS | {"namespace", "service", "pod", "container", "endpoint", "app", "release"}


def _family(metric: MetricWrapperBase, kind: str) -> tuple[str, frozenset[str]]:
    (family,) = metric.describe()
    if family.type != kind:
        raise TypeError(f"{family.name} is a {family.type}, not a {kind}")
    # prometheus_client has no public way to list the label names of a metric that has no child yet;
    # `_labelnames` is what its own labels() checks label values against.
    return family.name, frozenset(metric._labelnames) | TARGET_LABELS


def counter(metric: Counter) -> Series:
    name, labels = _family(metric, "counter")
    return Series(f"{name}_total", labels)


def gauge(metric: Gauge) -> Series:
    return Series(*_family(metric, "gauge"))


@dataclass(frozen=True)
class HistogramSeries:
    """The three series a histogram is exposed as."""

    name: str
    bucket: Series
    count: Series
    sum: Series


def histogram(metric: Histogram) -> HistogramSeries:
    name, labels = _family(metric, "histogram")
    return HistogramSeries(
        name,
        Series(f"{name}_bucket", labels | {"le"}),
        Series(f"{name}_count", labels),
        Series(f"{name}_sum", labels),
    )


HTTP_REQUESTS = counter(metrics.HTTP_REQUESTS)
HTTP_LATENCY = histogram(metrics.HTTP_LATENCY)
HTTP_IN_FLIGHT = gauge(metrics.HTTP_IN_FLIGHT)
REGISTRATIONS = counter(metrics.REGISTRATIONS)
LOGINS = counter(metrics.LOGINS)
LOGIN_FAILURES = counter(metrics.LOGIN_FAILURES)
ARTICLES_PUBLISHED = counter(metrics.ARTICLES_PUBLISHED)
COMMENTS_CREATED = counter(metrics.COMMENTS_CREATED)
DB_POOL_SIZE = gauge(metrics.DB_POOL_SIZE)
DB_POOL_CHECKED_OUT = gauge(metrics.DB_POOL_CHECKED_OUT)
DB_POOL_OVERFLOW = gauge(metrics.DB_POOL_OVERFLOW)
DB_POOL_OPEN = gauge(metrics.DB_POOL_OPEN)
DB_CONNECTION_BUDGET = gauge(metrics.DB_CONNECTION_BUDGET)
DB_POOL_WAIT = histogram(metrics.DB_POOL_WAIT)
DB_QUERY_DURATION = histogram(metrics.DB_QUERY_DURATION)
DB_READS = counter(metrics.DB_READS)
DB_REPLICA_LAG = gauge(metrics.DB_REPLICA_LAG)
DB_REPLICA_LAG_BYTES = gauge(metrics.DB_REPLICA_LAG_BYTES)
DB_REPLICA_LAG_LIMIT = gauge(metrics.DB_REPLICA_LAG_LIMIT)
DB_REPLICA_UP = gauge(metrics.DB_REPLICA_UP)
CACHE_LOOKUPS = counter(metrics.CACHE_LOOKUPS)
CACHE_ERRORS = counter(metrics.CACHE_ERRORS)
RATE_LIMIT_CHECKS = counter(metrics.RATE_LIMIT_CHECKS)
PASSWORD_HASH_WAITS = counter(metrics.PASSWORD_HASH_WAITS)
PASSWORD_HASH_REFUSALS = counter(metrics.PASSWORD_HASH_REFUSALS)
BUILD_INFO = gauge(metrics.BUILD_INFO)


LIVE_CONNECTIONS = gauge(metrics.LIVE_CONNECTIONS)
LIVE_SUBSCRIPTIONS = gauge(metrics.LIVE_SUBSCRIPTIONS)
LIVE_EVENTS_PUBLISHED = counter(metrics.LIVE_EVENTS_PUBLISHED)
LIVE_PUBLISH_FAILURES = counter(metrics.LIVE_PUBLISH_FAILURES)
LIVE_EVENTS_DELIVERED = counter(metrics.LIVE_EVENTS_DELIVERED)
LIVE_DELIVERY_LAG = histogram(metrics.LIVE_DELIVERY_LAG)
LIVE_DISCONNECTS = counter(metrics.LIVE_DISCONNECTS)
LIVE_BUS_UP = gauge(metrics.LIVE_BUS_UP)


# The recording rules' series (rules.py), named level:metric:operations as Prometheus advises; they
# keep only the labels the rules aggregate by. ops/slo.py reads them by these names.
def requests_rate(config: Config, window: str) -> Series:
    return Series(f"{config.level}:inkwell_http_requests:rate{window}", frozenset(config.group_by))


def errors_ratio(config: Config, window: str) -> Series:
    return Series(
        f"{config.level}:inkwell_http_requests_errors:ratio_rate{window}", frozenset(config.group_by)
    )


def slow_ratio(config: Config, window: str) -> Series:
    return Series(f"{config.level}:inkwell_http_requests_slow:ratio_rate{window}", frozenset(config.group_by))


def latency_quantile(config: Config) -> Series:
    return Series(
        f"{config.level}:{HTTP_LATENCY.name}:histogram_quantile_5m", frozenset({*config.group_by, "quantile"})
    )


EXTERNAL: list[Series] = []
"""Every series read here that the service does not export."""


def external(name: str, *labels: str) -> Series:
    series = Series(name, frozenset(labels) | SCRAPE_LABELS)
    EXTERNAL.append(series)
    return series


# Prometheus's own, one per target, with the target's labels.
UP = external("up", *TARGET_LABELS)

# kube-state-metrics v2: https://github.com/kubernetes/kube-state-metrics/tree/main/docs/metrics
_DEPLOYMENT = ("namespace", "deployment")
DEPLOYMENT_SPEC_REPLICAS = external("kube_deployment_spec_replicas", *_DEPLOYMENT)
DEPLOYMENT_REPLICAS_UPDATED = external("kube_deployment_status_replicas_updated", *_DEPLOYMENT)
DEPLOYMENT_REPLICAS_READY = external("kube_deployment_status_replicas_ready", *_DEPLOYMENT)
DEPLOYMENT_REPLICAS_AVAILABLE = external("kube_deployment_status_replicas_available", *_DEPLOYMENT)
_HPA = ("namespace", "horizontalpodautoscaler")
_HPA_METRIC = (*_HPA, "metric_name", "metric_target_type")
HPA_CURRENT_REPLICAS = external("kube_horizontalpodautoscaler_status_current_replicas", *_HPA)
HPA_DESIRED_REPLICAS = external("kube_horizontalpodautoscaler_status_desired_replicas", *_HPA)
HPA_MIN_REPLICAS = external("kube_horizontalpodautoscaler_spec_min_replicas", *_HPA)
HPA_MAX_REPLICAS = external("kube_horizontalpodautoscaler_spec_max_replicas", *_HPA)
HPA_METRIC_CURRENT = external("kube_horizontalpodautoscaler_status_target_metric", *_HPA_METRIC)
HPA_METRIC_TARGET = external("kube_horizontalpodautoscaler_spec_target_metric", *_HPA_METRIC)
_CONTAINER = ("namespace", "pod", "uid", "container")
_RESOURCE = (*_CONTAINER, "node", "resource", "unit")
CONTAINER_RESTARTS = external("kube_pod_container_status_restarts_total", *_CONTAINER)
CONTAINER_REQUESTS = external("kube_pod_container_resource_requests", *_RESOURCE)
CONTAINER_LIMITS = external("kube_pod_container_resource_limits", *_RESOURCE)

# cAdvisor, as the kubelet exposes it: https://github.com/google/cadvisor/blob/master/docs/storage/prometheus.md
_CADVISOR = ("namespace", "pod", "container", "id", "image", "name")
CONTAINER_CPU = external("container_cpu_usage_seconds_total", *_CADVISOR)
CONTAINER_MEMORY_WORKING_SET = external("container_memory_working_set_bytes", *_CADVISOR)
CONTAINER_CPU_THROTTLED_PERIODS = external("container_cpu_cfs_throttled_periods_total", *_CADVISOR)
CONTAINER_CPU_PERIODS = external("container_cpu_cfs_periods_total", *_CADVISOR)
