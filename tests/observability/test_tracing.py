"""Traces over the wire: a real `inkwell serve` process exporting to OTLP receivers started here.

The tracer provider is global to a process, so every configuration runs in its own subprocess.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url

from launch import free_port, wait_for_port
from service import __version__
from tests.conftest import PostgresServer
from tests.support.otlp import (
    SPAN_KIND_CLIENT,
    SPAN_KIND_SERVER,
    ReceivedSpan,
    hanging_collector,
    otlp_grpc_receiver,
    otlp_http_receiver,
)

INKWELL = [sys.executable, "-m", "service"]
ROUTE = "/api/articles/{slug}"
BASE_ENV = {
    "INKWELL_ENVIRONMENT": "test",
    "INKWELL_ARGON2_TIME_COST": "1",
    "INKWELL_ARGON2_MEMORY_COST_KIB": "1024",
    "INKWELL_ARGON2_PARALLELISM": "1",
    # Export within a tenth of a second, so a test waits for spans, not for the batch timer.
    "OTEL_BSP_SCHEDULE_DELAY": "100",
}
POD = {"K8S_POD_NAME": "inkwell-6c9f7-x2x4q", "K8S_NAMESPACE": "blog", "K8S_NODE_NAME": "node-3"}


def _env(database_url: str, **extra: str) -> dict[str, str]:
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("INKWELL_", "OTEL_", "K8S_", "SENTRY_"))
    }
    return inherited | BASE_ENV | {"INKWELL_DATABASE_URL": database_url} | extra


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    output: Path

    def stop(self, timeout: float = 60) -> float:
        """SIGTERM, wait for the exit, and return how long the exit took."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=timeout)
        return time.monotonic() - started


@contextmanager
def serve(env: dict[str, str], output: Path, argv: list[str] | None = None) -> Iterator[Server]:
    port = free_port()
    # A file, not a pipe: a chatty server must never block on a pipe nobody reads.
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [*argv, str(port)] if argv else [*INKWELL, "serve", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", process, output)
    try:
        wait_for_port(port, timeout=60)
        yield server
    finally:
        server.stop()


def _traceparent(trace_id: str, parent_id: str, sampled: bool = True) -> str:
    return f"00-{trace_id}-{parent_id}-{'01' if sampled else '00'}"


def _new_ids() -> tuple[str, str]:
    return secrets.token_hex(16), secrets.token_hex(8)


def _publish(client: httpx.Client) -> str:
    """A new author and article; the article's slug."""
    name = f"tracer{uuid.uuid4().hex[:8]}"
    user = {"username": name, "email": f"{name}@example.org", "password": "tracing-password"}
    registered = client.post("/api/users", json={"user": user})
    assert registered.status_code == 201, registered.text
    token = registered.json()["user"]["token"]
    article = {"title": f"Traced {name}", "description": "d", "body": "b", "tagList": ["traced"]}
    created = client.post(
        "/api/articles", json={"article": article}, headers={"Authorization": f"Token {token}"}
    )
    assert created.status_code == 201, created.text
    return str(created.json()["article"]["slug"])


def _in_trace(spans: list[ReceivedSpan], trace_id: str) -> list[ReceivedSpan]:
    return [span for span in spans if span.trace_id == trace_id]


def _server_span(spans: list[ReceivedSpan], trace_id: str) -> ReceivedSpan | None:
    found = [span for span in _in_trace(spans, trace_id) if span.kind == SPAN_KIND_SERVER]
    return found[0] if found else None


@pytest.fixture(scope="module")
def database(postgres: PostgresServer) -> Iterator[str]:
    url = postgres.create_database("inkwell_tracing")
    yield url
    postgres.drop_database(url)


@pytest.fixture(scope="module")
def traced(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Any]]:
    """One server exporting over OTLP/HTTP with the default sampler, in a pod as the chart runs it."""
    with otlp_http_receiver() as receiver:
        env = _env(
            database,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_RESOURCE_ATTRIBUTES="team=blog,deployment.region=eu-west",
            **POD,
        )
        with serve(env, tmp_path_factory.mktemp("traced") / "server.log") as server:
            yield server, receiver


def test_one_request_exports_a_server_span_named_by_route_with_its_sql_statements_as_children(
    traced: tuple[Server, Any], database: str
) -> None:
    server, receiver = traced
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        slug = _publish(client)
        answer = client.get(f"/api/articles/{slug}")
    assert answer.status_code == 200
    assert answer.json()["article"]["slug"] == slug

    def request_span(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
        return [
            span
            for span in spans
            if span.kind == SPAN_KIND_SERVER
            and span.name == f"GET {ROUTE}"
            and span.attributes.get("http.target") == f"/api/articles/{slug}"
        ]

    spans = receiver.wait_for(lambda spans: len(request_span(spans)) == 1)
    (span,) = request_span(spans)
    assert len(span.trace_id) == 32
    assert span.parent_span_id == ""  # no traceparent came in: the request starts the trace
    assert span.attributes["http.route"] == ROUTE
    assert span.attributes["http.status_code"] == 200
    assert span.attributes["http.method"] == "GET"

    trace = _in_trace(spans, span.trace_id)
    children = [child for child in trace if child.span_id != span.span_id]
    # Only statements: no per-message ASGI send/receive spans, nothing else in the request's trace.
    assert children
    for child in children:
        assert child.parent_span_id == span.span_id
        assert child.kind == SPAN_KIND_CLIENT
        assert child.attributes["db.system"] == "postgresql"
        assert child.attributes["db.name"] == make_url(database).database
        assert child.attributes["db.statement"].strip()
    statements = " ".join(child.attributes["db.statement"] for child in children)
    assert "FROM articles" in statements


def test_the_resource_names_service_version_environment_and_pod(traced: tuple[Server, Any]) -> None:
    server, receiver = traced
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        assert client.get("/api/tags").status_code == 200
    spans = receiver.wait_for(lambda spans: any(span.name == "GET /api/tags" for span in spans))
    resource = next(span.resource for span in spans if span.name == "GET /api/tags")
    assert resource["service.name"] == "inkwell"
    assert resource["service.version"] == __version__
    assert resource["deployment.environment"] == "test"
    assert resource["k8s.pod.name"] == POD["K8S_POD_NAME"]
    assert resource["k8s.namespace.name"] == POD["K8S_NAMESPACE"]
    assert resource["k8s.node.name"] == POD["K8S_NODE_NAME"]
    # OTEL_RESOURCE_ATTRIBUTES adds to the code's attributes.
    assert resource["team"] == "blog"
    assert resource["deployment.region"] == "eu-west"
    assert uuid.UUID(resource["service.instance.id"])
    assert resource["telemetry.sdk.language"] == "python"


def test_an_incoming_traceparent_makes_the_request_a_child_of_the_upstream_span(
    traced: tuple[Server, Any],
) -> None:
    server, receiver = traced
    trace_id, upstream_span = _new_ids()
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        slug = _publish(client)
        answer = client.get(
            f"/api/articles/{slug}",
            headers={"traceparent": _traceparent(trace_id, upstream_span), "baggage": "tenant=acme,plan=pro"},
        )
    assert answer.status_code == 200
    spans = receiver.wait_for(lambda spans: _server_span(spans, trace_id) is not None)
    span = _server_span(spans, trace_id)
    assert span is not None
    assert span.name == f"GET {ROUTE}"
    assert span.parent_span_id == upstream_span
    statements = [child for child in _in_trace(spans, trace_id) if child.kind == SPAN_KIND_CLIENT]
    assert statements
    assert {child.parent_span_id for child in statements} == {span.span_id}


def test_an_unsampled_upstream_decision_is_followed(traced: tuple[Server, Any]) -> None:
    server, receiver = traced
    unsampled, upstream = _new_ids()
    marker, marker_parent = _new_ids()
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        dropped = client.get("/api/tags", headers={"traceparent": _traceparent(unsampled, upstream, False)})
        kept = client.get("/api/tags", headers={"traceparent": _traceparent(marker, marker_parent)})
    assert (dropped.status_code, kept.status_code) == (200, 200)
    # Spans leave in the order they end: once the later request's span is here, the first's would be.
    spans = receiver.wait_for(lambda spans: _server_span(spans, marker) is not None)
    assert _in_trace(spans, unsampled) == []


def test_probes_and_scrapes_are_not_traced_and_no_statement_starts_a_trace(
    traced: tuple[Server, Any],
) -> None:
    server, receiver = traced
    marker, parent = _new_ids()
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        assert client.get("/readyz").status_code == 200  # runs a query: must not become a root span
        for path in ("/healthz", "/metrics"):
            client.get(path)
        assert (
            client.get("/api/tags", headers={"traceparent": _traceparent(marker, parent)}).status_code == 200
        )
    spans = receiver.wait_for(lambda spans: _server_span(spans, marker) is not None)
    names = {span.name for span in spans}
    assert not {name for name in names if any(probe in name for probe in ("healthz", "readyz", "metrics"))}
    assert [span for span in spans if span.kind == SPAN_KIND_CLIENT and span.parent_span_id == ""] == []


def test_the_grpc_protocol_exports_to_an_otlp_grpc_receiver(database: str, tmp_path: Path) -> None:
    with otlp_grpc_receiver() as receiver:
        env = _env(
            database, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL="grpc"
        )
        with serve(env, tmp_path / "server.log") as server:
            trace_id, parent = _new_ids()
            answer = httpx.get(
                f"{server.base_url}/api/tags",
                headers={"traceparent": _traceparent(trace_id, parent)},
                timeout=30,
            )
            assert answer.status_code == 200
            spans = receiver.wait_for(lambda spans: _server_span(spans, trace_id) is not None)
    span = _server_span(spans, trace_id)
    assert span is not None
    assert span.name == "GET /api/tags"
    assert span.parent_span_id == parent
    assert span.resource["service.name"] == "inkwell"


def _serve_requests_then_stop(env: dict[str, str], output: Path, count: int) -> tuple[list[int], float]:
    trace_id, parent = _new_ids()
    with serve(env, output) as server, httpx.Client(base_url=server.base_url, timeout=30) as client:
        statuses = [
            client.get("/api/tags", headers={"traceparent": _traceparent(trace_id, parent)}).status_code
            for _ in range(count)
        ]
        return statuses, server.stop()


@pytest.mark.parametrize(
    "settings",
    [{"OTEL_TRACES_SAMPLER": "always_off"}, {"OTEL_SDK_DISABLED": "true"}],
    ids=["sampler-always-off", "sdk-disabled"],
)
def test_nothing_is_exported_when_sampling_is_off_or_the_sdk_disabled(
    database: str, tmp_path: Path, settings: dict[str, str]
) -> None:
    with otlp_http_receiver() as receiver:
        env = _env(database, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, **settings)
        # Even sampled upstream requests; the exit flushes whatever was queued, so after it the
        # receiver has everything it would ever get.
        statuses, _ = _serve_requests_then_stop(env, tmp_path / "server.log", 20)
        assert statuses == [200] * 20
        assert receiver.requests == []


CONFIGURE = textwrap.dedent(
    """
    import json, threading
    from opentelemetry import trace
    from service.config import Settings
    from service.observability import tracing

    on = tracing.configure_tracing(Settings())
    again = tracing.configure_tracing(Settings())
    threads = [t.name for t in threading.enumerate() if t.name.startswith("OtelBatch")]
    print(json.dumps({
        "on": on,
        "again": again,
        "exporter_threads": len(threads),
        "sdk_provider": type(trace.get_tracer_provider()).__module__.startswith("opentelemetry.sdk"),
    }))
    """
)


@pytest.mark.parametrize(
    ("settings", "expected_on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "   "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "TRUE"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            True,
        ),
    ],
    ids=["no-endpoint", "blank-endpoint", "sdk-disabled", "endpoint", "traces-endpoint", "grpc"],
)
def test_tracing_is_on_only_with_an_endpoint_and_then_once_per_process(
    database: str, settings: dict[str, str], expected_on: bool
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CONFIGURE],
        env=_env(database, **settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout.strip().splitlines()[-1])
    # Off means off: no provider, no exporter thread; on means exactly one of each.
    assert state == {
        "on": expected_on,
        "again": expected_on,
        "exporter_threads": 1 if expected_on else 0,
        "sdk_provider": expected_on,
    }


RESOURCE = textwrap.dedent(
    """
    import json
    from service.config import Settings
    from service.observability import tracing

    print(json.dumps(dict(tracing.build_resource(Settings()).attributes)))
    """
)


def test_the_operators_resource_variables_override_the_services_defaults(database: str) -> None:
    env = _env(
        database,
        OTEL_SERVICE_NAME="blog-api",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=staging-eu,service.namespace=blog",
        INKWELL_ENVIRONMENT="test",
    )
    result = subprocess.run(
        [sys.executable, "-c", RESOURCE], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    resource = json.loads(result.stdout.strip().splitlines()[-1])
    assert resource["service.name"] == "blog-api"
    assert resource["deployment.environment"] == "staging-eu"
    assert resource["service.namespace"] == "blog"
    assert resource["service.version"] == __version__


def test_an_unknown_protocol_is_refused_at_startup(database: str) -> None:
    env = _env(
        database, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318", OTEL_EXPORTER_OTLP_PROTOCOL="http/json"
    )
    result = subprocess.run(
        [sys.executable, "-c", CONFIGURE], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "OTEL_EXPORTER_OTLP_PROTOCOL='http/json' is not supported" in result.stderr


REQUESTS = 50
# Each of those requests takes milliseconds; an export on the request path would cost each one
# the exporter's 10 s timeout (hanging) or its retry backoff (dead), far beyond this bound.
BOUND_SECONDS = 10.0


def test_a_dead_collector_neither_fails_nor_slows_requests(database: str, tmp_path: Path) -> None:
    env = _env(database, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    with (
        serve(env, tmp_path / "server.log") as server,
        httpx.Client(base_url=server.base_url, timeout=30) as client,
    ):
        started = time.monotonic()
        statuses = [client.get("/api/tags").status_code for _ in range(REQUESTS)]
        elapsed = time.monotonic() - started
        assert statuses == [200] * REQUESTS
        assert elapsed < BOUND_SECONDS
        stopped_in = server.stop()
    assert server.process.returncode == 0
    assert stopped_in < 20


def test_a_hanging_collector_neither_fails_nor_slows_requests_nor_holds_up_the_exit(
    database: str, tmp_path: Path
) -> None:
    with hanging_collector() as collector:
        env = _env(
            database,
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
            # A small queue that fills at once: spans beyond it are dropped, requests never wait.
            OTEL_BSP_MAX_QUEUE_SIZE="16",
            OTEL_BSP_MAX_EXPORT_BATCH_SIZE="4",
        )
        with (
            serve(env, tmp_path / "server.log") as server,
            httpx.Client(base_url=server.base_url, timeout=30) as client,
        ):
            slug = _publish(client)
            started = time.monotonic()
            statuses = [client.get(f"/api/articles/{slug}").status_code for _ in range(REQUESTS)]
            elapsed = time.monotonic() - started
            assert statuses == [200] * REQUESTS
            assert elapsed < BOUND_SECONDS
            deadline = time.monotonic() + 30
            while collector.connections == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert collector.connections >= 1  # the exporter did try, and is stuck in that export
            stopped_in = server.stop()
    assert server.process.returncode == 0
    # The SDK alone would wait 30 s for the stuck export thread; the service gives it 5 s.
    assert stopped_in < 20


OUTGOING_APP = textwrap.dedent(
    """
    import sys

    import httpx
    import uvicorn

    from service.main import create_app

    app = create_app()


    @app.get("/probe/outgoing")
    async def outgoing(url: str) -> dict[str, int]:
        async with httpx.AsyncClient() as client:
            answer = await client.get(url)
        return {"status": answer.status_code}


    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)


@contextmanager
def header_recorder() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """An HTTP server that answers 204 and remembers each request's headers."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({key.lower(): value for key, value in self.headers.items()})
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/downstream", seen
    finally:
        server.shutdown()
        server.server_close()


def test_outgoing_httpx_calls_carry_the_trace_and_the_upstream_baggage(database: str, tmp_path: Path) -> None:
    script = tmp_path / "outgoing_app.py"
    script.write_text(OUTGOING_APP)
    with otlp_http_receiver() as receiver, header_recorder() as (downstream, seen):
        env = _env(database, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint)
        with serve(env, tmp_path / "server.log", argv=[sys.executable, str(script)]) as server:
            trace_id, upstream = _new_ids()
            answer = httpx.get(
                f"{server.base_url}/probe/outgoing",
                params={"url": downstream},
                headers={"traceparent": _traceparent(trace_id, upstream), "baggage": "tenant=acme"},
                timeout=30,
            )
            assert answer.json() == {"status": 204}
            spans = receiver.wait_for(
                lambda spans: (
                    any(span.kind == SPAN_KIND_CLIENT for span in _in_trace(spans, trace_id))
                    and _server_span(spans, trace_id) is not None
                )
            )
    request = _server_span(spans, trace_id)
    assert request is not None
    assert request.name == "GET /probe/outgoing"
    (call,) = [span for span in _in_trace(spans, trace_id) if span.kind == SPAN_KIND_CLIENT]
    assert call.parent_span_id == request.span_id
    (headers,) = seen
    assert headers["traceparent"] == _traceparent(trace_id, call.span_id)
    assert headers["baggage"] == "tenant=acme"
