"""Metrics, traces, logs and error reports: generic (no domain, no Conduit error type), wired in two
steps: once per process, then per app.

`setup_process` configures what is global to a process (log handlers, the tracer provider, the
Sentry client) and is idempotent; `request_observers` and `instrument_engine` give one app its
request observers (fed by `service.observability.http.ResponseObserver`) and its engine's metrics
and spans.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.observability import errors, logging, metrics, tracing
from service.observability.http import Observer


def setup_process(settings: Settings, *, expected_failures: Callable[[BaseException], bool]) -> None:
    logging.configure_logging(settings)
    tracing.configure_tracing(settings)
    errors.configure_sentry(settings, expected=expected_failures)
    if settings.metrics_enabled:
        metrics.record_build(settings)
        metrics.record_connection_budget(settings)


def request_observers(settings: Settings) -> list[Observer]:
    """In the order they start; they finish in reverse, so the server span is current for the
    metrics' exemplar and the access line's trace id."""
    observers: list[Observer] = []
    if (spans := tracing.server_spans()) is not None:
        observers.append(spans)
    if settings.metrics_enabled:
        observers.append(metrics.HttpMetrics(scrape_path=None if settings.metrics_port else "/metrics"))
    observers.append(logging.AccessLog(settings))
    return observers


def instrument_engine(engine: AsyncEngine) -> None:
    metrics.instrument_engine(engine)
    tracing.trace_engine(engine)
