"""The pipeline's own ASGI layers: the last-resort answer to what no handler caught, and a limit on
request body size (`service.pipeline` says where each sits)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.db import is_outage
from service.errors import ConduitError, ServiceUnavailable
from service.responses import conduit_error_response

logger = logging.getLogger("service.errors")


def is_expected_failure(exc: BaseException) -> bool:
    """An answer the code chose (a Conduit error of any status) or a database outage: never a bug."""
    return isinstance(exc, ConduitError) or is_outage(exc)


class _ServerError(ConduitError):
    status_code = 500


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
            answer: ConduitError
            if isinstance(exc, ConduitError):
                answer = exc
            elif is_outage(exc):
                answer = ServiceUnavailable("database")
                answer.__cause__ = exc  # logged with the 503 (service.responses)
            else:
                self.report(Request(scope), exc)
                logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
                answer = _ServerError({"server": ["an unexpected error occurred"]})
            await _answer(answer, scope, receive, send)


class _BodyTooLarge(HTTPException):
    # An HTTPException, so FastAPI's body reader passes it on instead of calling it unparseable.
    def __init__(self) -> None:
        super().__init__(413)


# The rest of a refused body is not read: the connection cannot carry another request.
_CLOSE = {"Connection": "close"}


class BodyTooLarge(ConduitError):
    status_code = 413

    def __init__(self, max_bytes: int) -> None:
        super().__init__({"body": [f"is too large (maximum is {max_bytes} bytes)"]}, headers=_CLOSE)


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
                    invalid = ConduitError({"body": ["has an invalid Content-Length"]}, headers=_CLOSE)
                    await _answer(invalid, scope, receive, send)
                    return
                if declared > self.max_bytes:
                    await _answer(BodyTooLarge(self.max_bytes), scope, receive, send)
                    return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            # Answered by UnhandledErrors, the layer outside this one, unless a response has started.
            raise BodyTooLarge(self.max_bytes) from None


async def _answer(error: ConduitError, scope: Scope, receive: Receive, send: Send) -> None:
    await conduit_error_response(error)(scope, receive, send)
