"""`GET /api/live`: the WebSocket's protocol (docs/live.md, and the page at /docs/live).

A socket is accepted (so that a refusal can carry a close code and a reason a browser can read),
then closed at once if the process drains (1012), has lost the bus (1013), or its client already
holds as many sockets as it may (4429). The token comes in `Sec-WebSocket-Protocol` as
`token.<jwt>` beside `inkwell.live.v1` (the protocol the server selects), or in a first message
`{"type": "auth", "token": "<jwt>"}`; never in the query string, which access logs keep. Then two
tasks run until the hub or the client ends the socket: one reads the client's messages, the other
sends the socket's queue, so routing never waits on a client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect

from service.errors import ConduitError
from service.live.hub import CLIENT, INTERNAL, PROTOCOL, Close, Connection, Hub, SubscribeError

logger = structlog.get_logger("inkwell.live")

SUBPROTOCOL = "inkwell.live.v1"
TOKEN_PREFIX = "token."  # noqa: S105 - the subprotocol that carries one, not a secret
PATH = "/api/live"
# A client's messages: at most this many characters each, and this many in a burst, refilled at
# this rate (a browser tab subscribes a handful of times a minute).
MAX_MESSAGE_CHARS = 16_384
BURST_MESSAGES = 30
MESSAGES_PER_SECOND = 2.0


def _offered_token(websocket: WebSocket) -> tuple[str | None, str | None]:
    """The subprotocol to select and the token offered among the subprotocols, if any."""
    offered: list[str] = websocket.scope.get("subprotocols") or []
    token = next((item.removeprefix(TOKEN_PREFIX) for item in offered if item.startswith(TOKEN_PREFIX)), None)
    return (SUBPROTOCOL if SUBPROTOCOL in offered else None), token


class _Budget:
    __slots__ = ("left", "stamp")

    def __init__(self) -> None:
        self.left = float(BURST_MESSAGES)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.left = min(BURST_MESSAGES, self.left + (now - self.stamp) * MESSAGES_PER_SECOND)
        self.stamp = now
        if self.left < 1:
            return False
        self.left -= 1
        return True


def _error(errors: dict[str, list[str]]) -> dict[str, Any]:
    return {"type": "error", "errors": errors}


async def live(websocket: WebSocket) -> None:
    hub: Hub = websocket.app.state.live
    subprotocol, token = _offered_token(websocket)
    await websocket.accept(subprotocol=subprotocol)
    refused = hub.refusal()
    if refused is not None:
        await _close(websocket, refused)
        return
    proxies = hub.proxies
    peer = websocket.scope.get("client")
    forwarded = [value for name, value in websocket.scope["headers"] if name == b"x-forwarded-for"]
    connection = Connection(ip=proxies.client(peer[0] if peer else None, forwarded) or "unknown",
                            queue_size=hub.settings.live_queue_events)  # fmt: skip
    refused = await hub.admit(connection)
    if refused is not None:
        await _close(websocket, refused)
        return
    why = CLIENT
    subscriptions = 0
    try:
        if token is not None:
            answer = await hub.authenticate(connection, token)
            if isinstance(answer, Close):
                connection.finish(answer)
        why = await _serve(websocket, hub, connection)
    finally:
        subscriptions = len(connection.topics)
        await hub.release(connection)
        logger.info(
            "live socket closed",
            duration=round(time.monotonic() - connection.opened_at, 3),
            reason=why.label,
            code=why.code,
            user_id=connection.user_id,
            subscriptions=subscriptions,
            client_ip=connection.ip,
        )
    await _close(websocket, why)


async def _serve(websocket: WebSocket, hub: Hub, connection: Connection) -> Close:
    logger.info("live socket opened", user_id=connection.user_id, client_ip=connection.ip)
    reader = asyncio.create_task(_receive(websocket, hub, connection))
    sender = asyncio.create_task(_send(websocket, connection))
    try:
        return await connection.closed
    finally:
        for task in (reader, sender):
            task.cancel()
        for task in (reader, sender):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _close(websocket: WebSocket, why: Close) -> None:
    Hub.closed(why)
    if why is CLIENT:
        return
    with contextlib.suppress(Exception):  # the client may be gone already
        await websocket.close(code=why.code, reason=why.reason)


async def _send(websocket: WebSocket, connection: Connection) -> None:
    try:
        while True:
            item = await connection.queue.get()
            await websocket.send_text(connection.encode(item))
    except (WebSocketDisconnect, RuntimeError, OSError):
        connection.finish(CLIENT)


async def _receive(websocket: WebSocket, hub: Hub, connection: Connection) -> None:
    budget = _Budget()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                connection.finish(CLIENT)
                return
            text = message.get("text")
            if text is None:
                connection.finish(
                    Close(PROTOCOL.code, "bad message: text frames of JSON only", PROTOCOL.label)
                )
                return
            if len(text) > MAX_MESSAGE_CHARS:
                connection.finish(Close(PROTOCOL.code, "bad message: too long", PROTOCOL.label))
                return
            if not budget.take():
                connection.finish(Close(PROTOCOL.code, "bad message: too many messages", PROTOCOL.label))
                return
            problem = await _handle(hub, connection, text)
            if problem is not None:
                connection.finish(problem)
                return
    except (WebSocketDisconnect, RuntimeError, OSError):
        connection.finish(CLIENT)
    except Exception:
        # A bug, not the client's doing: logged, and the socket ends rather than stop listening.
        logger.exception("live message failed", user_id=connection.user_id)
        connection.finish(INTERNAL)


def _topics(body: dict[str, Any]) -> list[str] | None:
    topics = body.get("topics")
    if not isinstance(topics, list) or not topics or not all(isinstance(topic, str) for topic in topics):
        return None
    return topics


async def _handle(hub: Hub, connection: Connection, text: str) -> Close | None:
    """Handles one client message; a Close for one that ends the socket."""
    try:
        body = json.loads(text)
    except ValueError:
        return Close(PROTOCOL.code, "bad message: not JSON", PROTOCOL.label)
    kind = body.get("type") if isinstance(body, dict) else None
    if kind == "auth":
        token = body.get("token")
        if not isinstance(token, str) or not token:
            return Close(PROTOCOL.code, "bad message: auth needs a token", PROTOCOL.label)
        answer = await hub.authenticate(connection, token)
        if isinstance(answer, Close):
            return answer
        connection.send(_error(answer) if answer else {"type": "authenticated", "user": connection.user_id})
        return None
    if kind in {"subscribe", "unsubscribe"}:
        topics = _topics(body)
        since = body.get("since")
        if topics is None or (since is not None and not isinstance(since, str)):
            return Close(PROTOCOL.code, f"bad message: {kind} needs a list of topics", PROTOCOL.label)
        if kind == "unsubscribe":
            hub.unsubscribe(connection, topics)
            return None
        try:
            await hub.subscribe(connection, topics, since)
        except SubscribeError as exc:
            connection.send(_error(exc.errors))
        except ConduitError as exc:  # the database is unavailable: answered as REST answers it
            connection.send(_error(exc.errors))
        return None
    if kind == "ping":
        connection.send({"type": "pong"})
        return None
    return Close(PROTOCOL.code, "bad message: unknown type", PROTOCOL.label)
