"""The pipeline's own ASGI layers: the last-resort answer to what no handler caught, and a limit on
request body size (`service.pipeline` says where each sits)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.db import is_outage
from service.errors import ConduitError
from service.responses import error_response

logger = logging.getLogger("service.errors")


def is_expected_failure(exc: BaseException) -> bool:
    """An answer the code chose (a Conduit error of any status) or a database outage: never a bug."""
    return isinstance(exc, ConduitError) or is_outage(exc)


class UnhandledErrors:
    """Answers what escaped every handler in the Conduit format, never with a stack trace: a Conduit
    error raised outside the routes with its own status, a database outage with 503, anything else
    with 500, reported (`report`) and logged once with its traceback; nothing is re-raised to the
    server, which would log it again."""

    def __init__(self, app: ASGIApp, *, report: Callable[[Request, BaseException], None]) -> None:
        self.app = app
        self.report = report

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if response_started:
                raise
            if isinstance(exc, ConduitError):
                response = error_response(exc.status_code, exc.errors, exc.headers)
            elif is_outage(exc):
                logger.warning("database unavailable: %s", type(exc).__name__)
                response = error_response(
                    503, {"database": ["is unavailable, retry later"]}, {"Retry-After": "1"}
                )
            else:
                self.report(Request(scope), exc)
                logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
                response = error_response(500, {"server": ["an unexpected error occurred"]})
            await response(scope, receive, send)


class _BodyTooLarge(HTTPException):
    # An HTTPException, so FastAPI's body reader passes it on instead of calling it unparseable.
    def __init__(self) -> None:
        super().__init__(413)


class BodySizeLimitMiddleware:
    """413 for a body over `max_bytes`, whether declared by Content-Length or streamed chunked."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0:
                    await self._reject(scope, receive, send, 400, "has an invalid Content-Length")
                    return
                if declared > self.max_bytes:
                    await self._reject(
                        scope, receive, send, 413, f"is too large (maximum is {self.max_bytes} bytes)"
                    )
                    return

        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if response_started:
                raise
            await self._reject(scope, receive, send, 413, f"is too large (maximum is {self.max_bytes} bytes)")

    @staticmethod
    async def _reject(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
        await error_response(status, {"body": [message]}, {"Connection": "close"})(scope, receive, send)
