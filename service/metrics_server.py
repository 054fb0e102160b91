"""/metrics on a port of its own (INKWELL_METRICS_PORT), so the public port never serves it, whatever
an ingress or a proxy in front of it routes: the app then has no /metrics route at all.

`start` is the one call: `inkwell serve` makes it in the process that supervises. With several
workers that is the supervisor, which reads prometheus_client's multiprocess directory (every
worker's files, the dead ones' counters included), as prometheus_client documents for gunicorn's
master; with one worker the supervisor is the worker, and the process's own registry is served
(which keeps the latency histogram's exemplars). The server is prometheus_client's own, in a daemon
thread: it speaks Prometheus text or OpenMetrics as the scraper asks, and a scrape never waits on
the event loop of a busy worker.

This module imports prometheus_client and nothing of the service's: a supervisor that imported the
metric definitions (`service.observability`, and SQLAlchemy and OpenTelemetry with it) would start
0.4 s later, measured with `python -X importtime`.

A supervisor that forks its workers (rather than spawning them, as uvicorn's does) should call
`start` after forking them, so no worker inherits the listening socket.
"""

from __future__ import annotations

import os
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server


def _registry() -> CollectorRegistry:
    # As service.observability.metrics.registry_for_scrape, which the public port's /metrics uses.
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def start(port: int, host: str = "0.0.0.0") -> WSGIServer:  # noqa: S104 - a pod's port, reached by Prometheus
    """Serves the metrics of this process (or of every worker, in multiprocess mode: call it once
    PROMETHEUS_MULTIPROC_DIR is set) on `host:port` until the process exits."""
    server, _thread = start_http_server(port, addr=host, registry=_registry())
    return server
