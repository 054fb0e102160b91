"""One observer per HTTP request, so status, bytes and duration are captured once and feed the metrics,
the server span and the access line alike, and every line logged while it runs names its request id.

`ResponseObserver` is the pipeline's outermost layer. It reads the request id (or makes one), binds
it to the request's log lines, echoes it on the response, and hands one `Exchange` to its
observers: each is told when the request starts and when it has finished, in reverse order, so the
span an observer opened is still current for those inside it (the metrics' exemplar, the access
line's trace id).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.observability.routes import RouteTemplates

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass(slots=True)
class Exchange:
    """One request and its response, as far as they have got."""

    scope: Scope
    templates: RouteTemplates
    request_id: str
    started: float
    forwarded_for: list[bytes]
    status: int = 500  # until a response starts: what the client gets if none ever does
    sent: int = 0
    completed: bool = False
    error: BaseException | None = None
    ended: float = 0.0
    # Where an observer keeps what it started (a span) until the request has finished.
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> str:
        method: str = self.scope["method"]
        return method

    @property
    def path(self) -> str:
        path: str = self.scope["path"]
        return path

    @property
    def duration(self) -> float:
        return self.ended - self.started

    def route(self) -> str:
        """The matched route's template (`/api/articles/{slug}`), or `<unmatched>`."""
        return self.templates.of(self.scope.get("route"))


class Observer(Protocol):
    def started(self, exchange: Exchange) -> None: ...
    def finished(self, exchange: Exchange) -> None: ...


class ResponseObserver:
    """The pipeline layer that captures a response once for every observer (see the module)."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[Any], observers: Sequence[Observer]) -> None:
        self.app = app
        self.templates = RouteTemplates(routes)
        self.observers = tuple(observers)
        self.reversed = tuple(reversed(self.observers))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id: str | None = None
        forwarded_for: list[bytes] = []
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _REQUEST_ID.fullmatch(candidate):
                    request_id = candidate
            elif name == b"x-forwarded-for":
                forwarded_for.append(value)
        request_id = request_id or uuid.uuid4().hex
        exchange = Exchange(scope, self.templates, request_id, time.perf_counter(), forwarded_for)
        header = (b"x-request-id", request_id.encode("latin-1"))

        async def observe(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            elif message["type"] == "http.response.body":
                exchange.sent += len(message.get("body", b""))
                exchange.completed = not message.get("more_body", False)
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        for observer in self.observers:
            observer.started(exchange)
        try:
            await self.app(scope, receive, observe)
        except BaseException as exc:
            exchange.error = exc
            raise
        finally:
            exchange.ended = time.perf_counter()
            for observer in self.reversed:
                observer.finished(exchange)
            structlog.contextvars.reset_contextvars(**tokens)
