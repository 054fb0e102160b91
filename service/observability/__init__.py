"""Metrics, traces, logs and error reports, wired in two steps: once per process, then per app.

`setup_process` configures what is global to a process (log handlers, the tracer provider, the
Sentry client) and is idempotent; `instrument_app` adds the middleware and endpoints to one app.
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.observability import errors, logging, metrics, tracing


def setup_process(settings: Settings) -> None:
    logging.configure_logging(settings)
    tracing.configure_tracing(settings)
    errors.configure_sentry(settings)


def instrument_app(app: FastAPI, settings: Settings, engine: AsyncEngine) -> None:
    metrics.instrument_app(app, settings, engine)
    tracing.instrument_app(app, engine)
    # Inside the request span, so an error report carries the trace id of the request that failed.
    errors.instrument_app(app)
    # Outermost of the three: the request id and the access log cover everything inside.
    logging.instrument_app(app, settings)
