"""Real OTLP trace receivers (HTTP/protobuf and gRPC) and a collector that never answers, for tests.

Each decodes what it receives with the OTLP protobuf definitions the exporter itself uses, so a
test asserts on the spans exactly as a collector would see them.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

SPAN_KIND_SERVER = 2
SPAN_KIND_CLIENT = 3
STATUS_CODE_ERROR = 2


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status_code: int
    # The trace ids of the spans it links to (a live delivery links to the write that published it).
    links: list[str] = field(default_factory=list)


@dataclass
class Receiver:
    """What every receiver shares: the decoded requests, and a way to wait for spans."""

    requests: list[ExportTraceServiceRequest] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def record(self, request: ExportTraceServiceRequest, headers: dict[str, str]) -> None:
        with self._changed:
            self.requests.append(request)
            self.headers.append(headers)
            self._changed.notify_all()

    def spans(self) -> list[ReceivedSpan]:
        with self._changed:
            requests = list(self.requests)
        found = []
        for request in requests:
            for resource_spans in request.resource_spans:
                resource = _attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        found.append(
                            ReceivedSpan(
                                name=span.name,
                                kind=span.kind,
                                trace_id=span.trace_id.hex(),
                                span_id=span.span_id.hex(),
                                parent_span_id=span.parent_span_id.hex(),
                                attributes=_attributes(span.attributes),
                                resource=resource,
                                status_code=span.status.code,
                                links=[link.trace_id.hex() for link in span.links],
                            )
                        )
        return found

    def wait_for(
        self, predicate: Callable[[list[ReceivedSpan]], bool], timeout: float = 30.0
    ) -> list[ReceivedSpan]:
        """All spans received, once predicate holds for them; AssertionError after timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                spans = self.spans()
                if predicate(spans):
                    return spans
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"spans never matched within {timeout}s; received {spans!r}")
                self._changed.wait(min(remaining, 0.5))


def _decode_body(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


@dataclass
class HttpReceiver(Receiver):
    port: int = 0

    @property
    def endpoint(self) -> str:
        """The base URL for OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces)."""
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def otlp_http_receiver() -> Iterator[HttpReceiver]:
    """An OTLP/HTTP receiver on a free port, answering POST /v1/traces like a collector."""
    receiver = HttpReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != "/v1/traces":
                self.send_error(404)
                return
            payload = _decode_body(body, self.headers.get("Content-Encoding", "").lower())
            request = ExportTraceServiceRequest()
            request.ParseFromString(payload)
            receiver.record(request, {k.lower(): v for k, v in self.headers.items()})
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class GrpcReceiver(Receiver):
    port: int = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def otlp_grpc_receiver() -> Iterator[GrpcReceiver]:
    """An OTLP/gRPC receiver (the collector's TraceService) on a free port, without TLS."""
    import grpc  # type: ignore[import-untyped]
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    receiver = GrpcReceiver()

    class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(  # noqa: N802 - the name the protocol gives it
            self, request: ExportTraceServiceRequest, context: Any
        ) -> ExportTraceServiceResponse:
            receiver.record(request, dict(context.invocation_metadata()))
            return ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(), server)  # type: ignore[no-untyped-call]
    receiver.port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield receiver
    finally:
        server.stop(grace=None)


@dataclass
class HangingCollector:
    """Accepts connections and then never reads or answers: a collector that is wedged."""

    port: int = 0
    connections: int = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def hanging_collector() -> Iterator[HangingCollector]:
    collector = HangingCollector()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    collector.port = listener.getsockname()[1]
    held: list[socket.socket] = []
    stopping = threading.Event()

    def accept() -> None:
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            held.append(connection)
            collector.connections += 1

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield collector
    finally:
        stopping.set()
        # shutdown() wakes the blocked accept() on Linux, where close() alone would not.
        with suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(timeout=5)
        for connection in held:
            connection.close()
