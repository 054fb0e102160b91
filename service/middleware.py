"""ASGI middleware the app needs before any route runs: a limit on request body size."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_response


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
