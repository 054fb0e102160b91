"""/metrics on its own port (INKWELL_METRICS_PORT) in a real `inkwell serve`: the public port has no
/metrics, and the metrics port serves exact counts, from the worker itself with one worker and from
every worker's files with several (the supervisor serves them). Neither port names its server."""

from __future__ import annotations

import httpx
import pytest

from launch import free_port, listening, wait_until
from tests.observability.test_metrics import OPENMETRICS, value
from tests.support.server import running_server, server_env

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_are_served_on_their_own_port_only(workers: int) -> None:
    metrics_port = free_port()
    requests = 30
    with running_server(server_env(INKWELL_METRICS_PORT=str(metrics_port)), workers=workers) as server:
        wait_until(listening(metrics_port), what="the metrics port", alive=server.process, log=server.log)
        for _ in range(requests):
            # A new connection per request, so with two workers the kernel spreads them over both.
            response = httpx.get(f"{server.url}/api/tags", timeout=30)
            assert response.status_code == 200
            assert "server" not in response.headers
        public = httpx.get(f"{server.url}/metrics", timeout=30)
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30)
        openmetrics = httpx.get(
            f"http://127.0.0.1:{metrics_port}/metrics", headers={"Accept": OPENMETRICS}, timeout=30
        )
    assert public.status_code == 404
    assert public.json() == {"errors": {"path": ["not found"]}}
    assert scraped.status_code == 200
    assert (
        value(scraped.text, "http_requests_total", handler="/api/tags", method="GET", status="2xx")
        == requests
    )
    # The public port's /metrics is a 404 like any other unmatched path, and counted as one.
    assert value(scraped.text, "http_requests_total", handler="none", method="GET", status="4xx") == 1
    assert value(scraped.text, "inkwell_build_info") >= 1
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")
