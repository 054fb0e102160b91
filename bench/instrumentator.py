"""Inkwell with prometheus-fastapi-instrumentator as its HTTP metrics layer instead of its own, configured
to the same metric names, labels and buckets: what `bench.metrics_layer` weighs ours against, and what
`tests/observability/test_instrumentator.py` scrapes beside ours, so the two stay comparable.

    python -m bench.serve --app bench.instrumentator:create_app --port 8001

It replaces the process's own HTTP metrics (their names are the instrumentator's, and one registry
cannot hold both), so it is served in a process of its own, never beside Inkwell's app.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import FastAPI
from prometheus_client import REGISTRY
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator import metrics as instrumentator_metrics

from service.config import Settings, get_settings
from service.main import create_app as create_inkwell
from service.observability import metrics


def instrumentator() -> Instrumentator:
    """Our series, as the instrumentator keeps them: counter and histogram by method, handler (the
    route template, "none" when no route matched) and status class, an unlabelled in-flight gauge,
    and nothing for the scrape itself."""
    return Instrumentator(
        should_group_status_codes=True,
        should_group_untemplated=True,
        should_instrument_requests_inprogress=True,
        inprogress_name="http_requests_inprogress",
        inprogress_labels=False,
        excluded_handlers=["^/metrics$"],
    ).add(
        instrumentator_metrics.requests(),
        instrumentator_metrics.latency(buckets=metrics.LATENCY_BUCKETS),
    )


def create_app(settings: Settings | None = None, **options: Any) -> FastAPI:
    for ours in (metrics.HTTP_REQUESTS, metrics.HTTP_LATENCY, metrics.HTTP_IN_FLIGHT):
        with contextlib.suppress(KeyError):  # a second app in this process: already done
            REGISTRY.unregister(ours)
    settings = settings or get_settings()
    # Inkwell as it is, but for its own HTTP metrics (the switch that turns them off) ...
    app = create_inkwell(settings.model_copy(update={"metrics_enabled": False}), **options)
    # ... and the instrumentator's outermost, where they were, with the same scrape endpoint.
    instrumentator().instrument(app)
    app.add_api_route("/metrics", metrics.metrics_endpoint, methods=["GET"], include_in_schema=False)
    metrics.record_build(settings)
    return app
