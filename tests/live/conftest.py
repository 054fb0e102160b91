"""Live updates through real `inkwell serve` processes, a real Redis, and real WebSocket clients (the
`websockets` library). Events are published as the domain's after-commit step will publish them:
through the broker, here a `RedisBroker` of the test's own on the servers' stream.

Nothing here waits a fixed time: every wait is for a frame, a close or a count, with a timeout
generous enough for a busy 2-core machine."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from service.live.broker import RedisBroker
from service.live.events import Event
from tests.support.redis import RedisServer, redis_server
from tests.support.server import ServerProcess, migrate, running_server, server_env

SECRET = "live-test-secret-that-is-long-enough-for-hs256-0123456789"
WAIT = 30.0  # for anything a test waits for: generous, never a measure of speed


def live_env(redis: RedisServer, database_url: str | None = None, **extra: str) -> dict[str, str]:
    return server_env(database_url, INKWELL_REDIS_URL=redis.url, INKWELL_SECRET_KEY=SECRET, **extra)


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    """One Redis for the module's servers, unless a test takes its own (see test_outages)."""
    with redis_server() as server:
        yield server


@pytest.fixture(scope="module")
def servers(redis: RedisServer) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two processes on one database and one Redis: two replicas."""
    env = live_env(redis, INKWELL_LIVE_MAX_CONNECTIONS_PER_USER="2")
    migrate(env)
    with running_server(env, migrate_first=False) as one, running_server(env, migrate_first=False) as two:
        yield one, two


@pytest.fixture
async def broker(redis: RedisServer) -> AsyncIterator[RedisBroker]:
    broker = RedisBroker(redis.url, retain=10_000)
    yield broker
    await broker.close()


@dataclass
class Account:
    username: str
    token: str

    @property
    def id(self) -> int:
        payload = self.token.split(".")[1]
        return int(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])


async def register(server: ServerProcess) -> Account:
    name = f"u{uuid.uuid4().hex[:10]}"
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as client:
        answer = await client.post(
            "/api/users",
            json={"user": {"username": name, "email": f"{name}@example.com", "password": "secret-pass-1"}},
        )
    assert answer.status_code == 201, answer.text
    return Account(name, answer.json()["user"]["token"])


async def article(server: ServerProcess, author: Account) -> str:
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as client:
        answer = await client.post(
            "/api/articles",
            json={
                "article": {
                    "title": f"Live {uuid.uuid4().hex[:8]}",
                    "description": "d",
                    "body": "b",
                    "tagList": [],
                }
            },
            headers={"Authorization": f"Token {author.token}"},
        )
    assert answer.status_code == 201, answer.text
    slug: str = answer.json()["article"]["slug"]
    return slug


def ws_url(server: ServerProcess) -> str:
    return f"ws://127.0.0.1:{server.port}/api/live"


def socket(server: ServerProcess, token: str | None = None, **options: Any) -> Any:
    protocols = [Subprotocol("inkwell.live.v1"), *([Subprotocol(f"token.{token}")] if token else [])]
    return connect(ws_url(server), subprotocols=protocols, open_timeout=WAIT, **options)


async def receive(ws: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    return frame


async def until(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """The next frame of type `kind`, skipping others."""
    while True:
        frame = await receive(ws)
        if frame["type"] == kind:
            return frame


async def subscribe(ws: ClientConnection, *topics: str, since: str | None = None) -> dict[str, Any]:
    await ws.send(
        json.dumps({"type": "subscribe", "topics": list(topics), **({"since": since} if since else {})})
    )
    return await receive(ws)


async def closed(ws: ClientConnection) -> tuple[int | None, str | None]:
    """Reads (and drops) frames until the server closes the socket: its close code and reason."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), WAIT)
    except ConnectionClosed as exc:
        return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, None)


def comment(slug: str, number: int, body: str = "hello") -> Event:
    return Event(
        topic=f"article:{slug}",
        type="comment.created",
        data={"comment": {"id": number, "body": body, "author": {"username": "someone"}}},
    )


async def metric(server: ServerProcess, line_start: str) -> float:
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as client:
        text = (await client.get("/metrics")).text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)]
    return sum(values)


async def eventually(check: Any, what: str, within: float = WAIT) -> Any:
    """Polls `check` (a coroutine function) until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        await asyncio.sleep(0.2)
