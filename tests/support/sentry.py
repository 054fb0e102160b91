"""A Sentry ingest endpoint small enough to read: it records the envelopes the SDK sends over real HTTP."""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROJECT_ID = 42
PUBLIC_KEY = "publickey"


@dataclass
class Envelope:
    headers: dict[str, Any]
    items: list[tuple[dict[str, Any], bytes]]
    raw: bytes  # decompressed, as the SDK serialised it

    def payloads(self, item_type: str) -> list[dict[str, Any]]:
        return [json.loads(payload) for header, payload in self.items if header.get("type") == item_type]


def parse_envelope(body: bytes) -> Envelope:
    """Sentry's envelope: a header line of JSON, then per item a JSON header line and its payload,
    which is `length` bytes when the header says so and otherwise runs to the next newline."""
    header_line, _, rest = body.partition(b"\n")
    items: list[tuple[dict[str, Any], bytes]] = []
    while rest.strip():
        item_line, _, rest = rest.partition(b"\n")
        item_header = json.loads(item_line)
        length = item_header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length:]
            rest = rest.removeprefix(b"\n")
        items.append((item_header, payload))
    return Envelope(json.loads(header_line), items, body)


def _decode(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        import brotli  # type: ignore[import-not-found, unused-ignore]  # the SDK sends br only when installed

        return bytes(brotli.decompress(body))
    if encoding in {"", "identity"}:
        return body
    raise ValueError(f"unexpected Content-Encoding {encoding!r}")


@dataclass
class SentryReceiver:
    port: int = 0
    envelopes: list[Envelope] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def dsn(self) -> str:
        return f"http://{PUBLIC_KEY}@127.0.0.1:{self.port}/{PROJECT_ID}"

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [event for envelope in self.envelopes for event in envelope.payloads("event")]

    def raw(self) -> bytes:
        with self.lock:
            return b"\n".join(envelope.raw for envelope in self.envelopes)

    def wait_for_events(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """At least `count` events, waiting for the SDK's background sender; fails after `timeout`."""
        deadline = time.monotonic() + timeout
        while len(events := self.events()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} Sentry events, received {len(events)}: {events}")
            time.sleep(0.02)
        return events


def _handler(receiver: SentryReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            expected = f"/api/{PROJECT_ID}/envelope/"
            auth = self.headers.get("X-Sentry-Auth", "")
            if self.path.split("?")[0] != expected or f"sentry_key={PUBLIC_KEY}" not in auth:
                with receiver.lock:
                    receiver.rejected.append(f"{self.path} {auth}")
                self.send_response(404)
                self.end_headers()
                return
            envelope = parse_envelope(_decode(body, self.headers.get("Content-Encoding", "")))
            with receiver.lock:
                receiver.envelopes.append(envelope)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    return Handler


@contextmanager
def sentry_receiver() -> Iterator[SentryReceiver]:
    receiver = SentryReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="sentry-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
