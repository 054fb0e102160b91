"""The release's SLOs from Prometheus: availability and latency against their targets, the error budget
left and how fast it burns, read from the recording rules (dashboards/) and from raw series where a rule
has no data yet, so the answer is the one the alerts act on. What cannot be measured (no requests in a
window, no series at all) is "unknown", never "ok": an alert's rule does not fire on missing data, and
an operator must not read that silence as health."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Imported when Prometheus is asked: every command loads this module (PrometheusError, the report
    # ops.views shows), and httpx takes a fifth of a second to import.
    import httpx

# The SLOs and alert windows of dashboards/config.py; the CLI ships without the dashboards package.
AVAILABILITY_TARGET = 0.999
LATENCY_TARGET = 0.99
LATENCY_THRESHOLD = "0.25"  # seconds; a bucket boundary of http_request_duration_seconds
EXCLUDED_HANDLERS = "/healthz|/readyz"  # probes are not users' traffic
RULE_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
LEVEL = "namespace_release"


@dataclass(frozen=True)
class BurnPair:
    long: str
    short: str
    factor: float
    action: str


BURN_PAIRS = (
    BurnPair("1h", "5m", 14.4, "page"),
    BurnPair("6h", "30m", 6.0, "page"),
    BurnPair("1d", "2h", 3.0, "ticket"),
    BurnPair("3d", "6h", 1.0, "ticket"),
)


class PrometheusError(Exception):
    pass


@dataclass(frozen=True)
class Value:
    value: float | None
    source: str  # "rule", "raw" or "none"


@dataclass(frozen=True)
class Burn:
    slo: str  # availability or latency
    long: str
    short: str
    factor: float
    action: str
    long_rate: float | None
    short_rate: float | None
    firing: bool

    @property
    def state(self) -> str:
        """firing, ok, or unknown when either window has no data to judge by."""
        if self.firing:
            return "firing"
        return "unknown" if self.long_rate is None or self.short_rate is None else "ok"


@dataclass
class SloReport:
    namespace: str
    release: str
    window: str
    requests_per_second: float | None
    availability: float | None
    availability_target: float
    availability_budget_left: float | None
    latency_sli: float | None  # share of requests faster than the threshold
    latency_target: float
    latency_threshold_seconds: float
    latency_budget_left: float | None
    p50_seconds: float | None
    p95_seconds: float | None
    p99_seconds: float | None
    burn_rates: dict[str, dict[str, float | None]] = field(default_factory=dict)  # window -> slo -> rate
    alerts: list[Burn] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def has_data(self) -> bool:
        return self.availability is not None

    @property
    def verdict(self) -> str:
        """degraded (a budget spent or an alert firing) wins over unknown (something has no data), which
        wins over ok (every budget and every alert measured, and fine)."""
        budgets = (self.availability_budget_left, self.latency_budget_left)
        if any(b is not None and b <= 0 for b in budgets) or any(a.firing for a in self.alerts):
            return "degraded"
        if any(b is None for b in budgets) or any(a.state == "unknown" for a in self.alerts):
            return "unknown"
        return "ok"

    @property
    def healthy(self) -> bool:
        return self.verdict == "ok"


class Prometheus:
    def __init__(self, url: str, *, timeout: float = 30) -> None:
        import httpx

        self.http: httpx.Client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def scalar(self, expr: str) -> float | None:
        import httpx

        try:
            response = self.http.get("/api/v1/query", params={"query": expr})
        except httpx.HTTPError as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.http.base_url}: {exc}") from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise PrometheusError(
                f"Prometheus answered HTTP {response.status_code}: {response.text[:200]}"
            ) from exc
        if body.get("status") != "success":
            raise PrometheusError(f"{expr}: {body.get('errorType')}: {body.get('error')}")
        results = body["data"]["result"]
        if not results:
            return None
        value = float(results[0]["value"][1])
        # 0/0 (no requests in the window) is no data, not a perfect or a failed SLO.
        return None if math.isnan(value) or math.isinf(value) else value


class Queries:
    """Each SLI by its recording rule, and the same expression on raw series for when the rule is absent."""

    def __init__(self, prometheus: Prometheus, *, namespace: str, release: str) -> None:
        self.prometheus = prometheus
        self.scope = f'namespace="{namespace}", release="{release}"'
        self.traffic = f'{{{self.scope}, handler!~"{EXCLUDED_HANDLERS}"}}'
        self.sources: dict[str, str] = {}

    def _traffic(self, *extra: str) -> str:
        return self.traffic[:-1] + "".join(f", {e}" for e in extra) + "}"

    def _either(self, key: str, rule: str | None, raw: str) -> float | None:
        if rule is not None:
            value = self.prometheus.scalar(rule)
            if value is not None:
                self.sources[key] = "rule"
                return value
        value = self.prometheus.scalar(raw)
        self.sources[key] = "raw" if value is not None else "none"
        return value

    def _rule(self, name: str, window: str, **labels: str) -> str | None:
        if window not in RULE_WINDOWS:
            return None
        matchers = ", ".join([self.scope, *(f'{k}="{v}"' for k, v in labels.items())])
        return f"{LEVEL}:{name}{window}{{{matchers}}}"

    def requests(self, window: str) -> float | None:
        raw = f"sum(rate(http_requests_total{self.traffic}[{window}]))"
        return self._either(f"requests:{window}", self._rule("inkwell_http_requests:rate", window), raw)

    def error_ratio(self, window: str) -> float | None:
        requests = f"sum(rate(http_requests_total{self.traffic}[{window}]))"
        server_errors = self._traffic('status="5xx"')
        errors = f"sum(rate(http_requests_total{server_errors}[{window}]))"
        raw = f"({errors} or 0 * {requests}) / {requests}"
        return self._either(
            f"errors:{window}", self._rule("inkwell_http_requests_errors:ratio_rate", window), raw
        )

    def slow_ratio(self, window: str) -> float | None:
        within = self._traffic(f'le="{LATENCY_THRESHOLD}"')
        fast = f"sum(rate(http_request_duration_seconds_bucket{within}[{window}]))"
        timed = f"sum(rate(http_request_duration_seconds_count{self.traffic}[{window}]))"
        raw = f"1 - ({fast} / {timed})"
        return self._either(
            f"slow:{window}", self._rule("inkwell_http_requests_slow:ratio_rate", window), raw
        )

    def quantile(self, q: str) -> float | None:
        rule = f'{LEVEL}:http_request_duration_seconds:histogram_quantile_5m{{{self.scope}, quantile="{q}"}}'
        raw = f"histogram_quantile({q}, sum by (le) (rate(http_request_duration_seconds_bucket{self.traffic}[5m])))"
        return self._either(f"p{q}", rule, raw)


def _budget_left(bad: float | None, target: float) -> float | None:
    return None if bad is None else 1 - bad / (1 - target)


def _burn(bad: float | None, target: float) -> float | None:
    return None if bad is None else bad / (1 - target)


def measure(prometheus: Prometheus, *, namespace: str, release: str, window: str = "30d") -> SloReport:
    q = Queries(prometheus, namespace=namespace, release=release)
    errors = q.error_ratio(window)
    slow = q.slow_ratio(window)
    report = SloReport(
        namespace=namespace,
        release=release,
        window=window,
        requests_per_second=q.requests("5m"),
        availability=None if errors is None else 1 - errors,
        availability_target=AVAILABILITY_TARGET,
        availability_budget_left=_budget_left(errors, AVAILABILITY_TARGET),
        latency_sli=None if slow is None else 1 - slow,
        latency_target=LATENCY_TARGET,
        latency_threshold_seconds=float(LATENCY_THRESHOLD),
        latency_budget_left=_budget_left(slow, LATENCY_TARGET),
        p50_seconds=q.quantile("0.5"),
        p95_seconds=q.quantile("0.95"),
        p99_seconds=q.quantile("0.99"),
    )
    windows = sorted({w for p in BURN_PAIRS for w in (p.long, p.short)}, key=_seconds)
    for w in windows:
        report.burn_rates[w] = {
            "availability": _burn(q.error_ratio(w), AVAILABILITY_TARGET),
            "latency": _burn(q.slow_ratio(w), LATENCY_TARGET),
        }
    for slo in ("availability", "latency"):
        for pair in BURN_PAIRS:
            long_rate, short_rate = report.burn_rates[pair.long][slo], report.burn_rates[pair.short][slo]
            firing = (
                long_rate is not None
                and short_rate is not None
                and long_rate > pair.factor
                and short_rate > pair.factor
            )
            report.alerts.append(
                Burn(slo, pair.long, pair.short, pair.factor, pair.action, long_rate, short_rate, firing)
            )
    report.sources = dict(sorted(q.sources.items()))
    return report


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return int(duration[:-1]) * units[duration[-1]]
