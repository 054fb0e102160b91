"""OpenTelemetry traces, so one request can be followed from the ingress through every SQL statement.

Configured only from the standard `OTEL_*` variables: tracing is on when an OTLP endpoint is set
and the SDK is not disabled, and everything else (sampler, batch sizes, timeouts, headers,
propagators, extra resource attributes) keeps its standard meaning.
"""

from __future__ import annotations

import atexit
import os
import threading
import uuid
import weakref
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter

from service import __version__
from service.config import Settings
from service.observability.routes import QUIET_PATHS

# This module imports the SDK and the instrumentations only once tracing is on, so tracing off
# costs no import time.
if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

    from service.observability.http import Exchange

# Downward-API variables the chart sets, and the resource attributes they become.
K8S_ATTRIBUTES = {
    "K8S_POD_NAME": "k8s.pod.name",
    "K8S_NAMESPACE": "k8s.namespace.name",
    "K8S_NODE_NAME": "k8s.node.name",
}

# At exit the last spans get this long to leave; a hanging collector must not hold up a rollout.
SHUTDOWN_TIMEOUT_SECONDS = 5.0
DEFAULT_EXPORT_BATCH = 64

_lock = threading.Lock()
_provider: TracerProvider | None = None
_traced_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def tracing_requested() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(
        os.environ.get(name, "").strip()
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def build_resource(settings: Settings) -> Resource:
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource

    attributes: dict[str, str] = {
        "service.name": "inkwell",
        "service.version": __version__,
        "service.instance.id": str(uuid.uuid4()),
        "deployment.environment": settings.environment,
    }
    for variable, attribute in K8S_ATTRIBUTES.items():
        if value := os.environ.get(variable, "").strip():
            attributes[attribute] = value
    # The operator's OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override the code's defaults.
    return Resource.create(attributes).merge(OTELResourceDetector().detect())


def build_exporter() -> SpanExporter:
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    # Both exporters read their endpoint, headers, timeout and compression from the environment.
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol == "grpc":
        # Imported only when chosen: grpc is a heavy import for every process that does not use it.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported; use http/protobuf or grpc")


def configure_tracing(settings: Settings) -> bool:
    """Install the process's tracer provider once; True when tracing is on."""
    global _provider
    with _lock:
        if _provider is not None:
            return True
        if not tracing_requested():
            return False
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        # The sampler comes from OTEL_TRACES_SAMPLER(_ARG), parent-based always-on by default.
        provider = TracerProvider(resource=build_resource(settings), shutdown_on_exit=False)
        # Export runs on the processor's thread, off the request path; when the collector is slow
        # or gone its bounded queue drops spans instead of growing or blocking requests.
        # Small batches: encoding one holds the GIL on the export thread, and 512 spans (the SDK's
        # default) stalled every request in the process for tens of milliseconds (bench: p99 45 ms
        # against 4 ms with 64). OTEL_BSP_MAX_EXPORT_BATCH_SIZE still wins when set.
        batch = int(os.environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") or DEFAULT_EXPORT_BATCH)
        processor = BatchSpanProcessor(build_exporter(), max_export_batch_size=batch)
        provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        _provider = provider
        if not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry:
            HTTPXClientInstrumentor().instrument(tracer_provider=provider)
        atexit.register(shutdown_tracing)
        return True


def shutdown_tracing(timeout_seconds: float = SHUTDOWN_TIMEOUT_SECONDS) -> None:
    """Send the spans still queued, giving up after timeout_seconds; idempotent."""
    global _provider
    with _lock:
        provider, _provider = _provider, None
    if provider is None:
        return
    # The SDK waits up to 30 s for its export thread (more with retries); from a daemon thread
    # the wait is ours to bound, and what is left unsent dies with the process.
    flusher = threading.Thread(target=provider.shutdown, name="otel-shutdown", daemon=True)
    flusher.start()
    flusher.join(timeout_seconds)


def server_spans() -> ServerSpans | None:
    """The observer that traces requests, when tracing is on in this process."""
    if _provider is None:
        return None
    return ServerSpans(_provider.get_tracer("inkwell.http", __version__))


def trace_engine(engine: AsyncEngine) -> None:
    """One span per SQL statement of a traced request, when tracing is on in this process."""
    if _provider is not None:
        _trace_engine(engine.sync_engine, _provider)


class _ScopeHeaders(Getter[dict[str, str]]):
    def get(self, carrier: dict[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        return [value] if value is not None else None

    def keys(self, carrier: dict[str, str]) -> list[str]:
        return list(carrier)


_GETTER = _ScopeHeaders()


class ServerSpans:
    """One SERVER span per request, named by its route template, parent taken from W3C headers: an
    observer of `service.observability.http`. Probes and scrapes are not traced: they would be most
    of the traces, and tell nobody anything.

    OpenTelemetry's FastAPI instrumentation does the same but pays, on every request and before the
    sampler has spoken, for route resolution and a dozen attributes; with a ratio sampler nine
    requests in ten are not recorded, so here an unrecorded span costs a context switch and nothing
    else, and a recorded one gets the same attributes.
    """

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer

    def started(self, exchange: Exchange) -> None:
        scope = exchange.scope
        if exchange.path in QUIET_PATHS:
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in (b"traceparent", b"tracestate", b"baggage")
        }
        parent = propagate.extract(carrier, getter=_GETTER) if carrier else None
        method = exchange.method
        span = self.tracer.start_span(
            method, context=parent, kind=trace.SpanKind.SERVER, attributes={"http.method": method}
        )
        exchange.notes["span"] = span, otel_context.attach(trace.set_span_in_context(span, parent))

    def finished(self, exchange: Exchange) -> None:
        started = exchange.notes.get("span")
        if started is None:
            return
        span, token = started
        if span.is_recording():
            if isinstance(exchange.error, Exception):
                span.record_exception(exchange.error)
            self._describe(span, exchange)
        span.end()
        otel_context.detach(token)

    def _describe(self, span: trace.Span, exchange: Exchange) -> None:
        scope = exchange.scope
        route = exchange.route()
        status = exchange.status
        span.update_name(f"{exchange.method} {route}")
        query = scope.get("query_string", b"")
        client, server = scope.get("client"), scope.get("server")
        attributes: dict[str, Any] = {
            "http.route": route,
            "http.status_code": status,
            "http.scheme": scope.get("scheme", "http"),
            "http.target": exchange.path + ("?" + query.decode("latin-1") if query else ""),
            "http.flavor": scope.get("http_version", "1.1"),
        }
        if client:
            attributes["net.peer.ip"], attributes["net.peer.port"] = client[0], client[1]
        if server:
            attributes["net.host.name"], attributes["net.host.port"] = server[0], server[1]
        for name, value in scope["headers"]:
            if name == b"user-agent":
                attributes["http.user_agent"] = value.decode("latin-1")
        span.set_attributes(attributes)
        if status >= 500:
            span.set_status(trace.Status(trace.StatusCode.ERROR))


def _trace_engine(engine: Engine, provider: TracerProvider) -> None:
    # A tracer of our own rather than SQLAlchemyInstrumentor: the instrumentor acts once per process
    # and patches create_engine and Engine.connect globally; here exactly the app's engine is traced.
    if engine in _traced_engines:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.instrumentation.sqlalchemy.version import __version__ as instrumentation_version
    from opentelemetry.metrics import get_meter

    class StatementTracer(EngineTracer):
        """One span per statement, only inside a recorded span (a request being traced).

        Statements outside one (readiness probes, startup, unsampled requests) would otherwise be
        orphan root traces, every few seconds per pod, and would pay for their attributes.
        """

        def _before_cur_exec(self, conn: Any, cursor: Any, statement: str, *args: Any) -> Any:
            if not trace.get_current_span().is_recording():
                return statement, args[0]
            return super()._before_cur_exec(conn, cursor, statement, *args)  # type: ignore[no-untyped-call]

    tracer = provider.get_tracer("opentelemetry.instrumentation.sqlalchemy", instrumentation_version)
    connections_usage = get_meter("opentelemetry.instrumentation.sqlalchemy").create_up_down_counter(
        name="db.client.connections.usage", unit="connections"
    )
    StatementTracer(tracer, engine, connections_usage)  # type: ignore[no-untyped-call]
    _traced_engines.add(engine)


def current_trace_ids(*, sampled_only: bool = False) -> tuple[str, str] | None:
    """(trace_id, span_id) of the current valid span as lowercase hex; None without one.

    An unsampled span still carries the upstream trace id, which joins log lines across services;
    exemplars want `sampled_only=True`, since they must point at a trace that was exported.
    """
    context = trace.get_current_span().get_span_context()
    if not context.is_valid or (sampled_only and not context.trace_flags.sampled):
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
