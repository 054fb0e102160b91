"""The edge covers WebSockets as it covers requests: a Host not allowed, or a browser page from an
Origin not allowed (CORS does not apply to WebSockets), is refused before the socket is accepted."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.live.conftest import WAIT, live_env, receive
from tests.support.redis import RedisServer
from tests.support.server import ServerProcess, running_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ORIGIN = "https://app.example.com"


@pytest.fixture(scope="module")
def server(redis: RedisServer) -> Iterator[ServerProcess]:
    env = live_env(redis, INKWELL_ALLOWED_HOSTS="127.0.0.1", INKWELL_CORS_ORIGINS=ORIGIN)
    with running_server(env) as server:
        yield server


async def status_of(url: str, origin: str | None) -> int:
    try:
        async with connect(url, origin=origin, open_timeout=WAIT) as ws:  # type: ignore[arg-type]
            await ws.send(json.dumps({"type": "ping"}))
            assert await receive(ws) == {"type": "pong"}
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


async def test_only_allowed_hosts_and_origins_open_a_socket(server: ServerProcess) -> None:
    allowed = f"ws://127.0.0.1:{server.port}/api/live"
    assert await status_of(allowed, ORIGIN) == 101
    assert await status_of(allowed, None) == 101  # not a browser: nothing to forge
    assert await status_of(allowed, "https://evil.example.net") == 403
    assert await status_of(f"ws://localhost:{server.port}/api/live", ORIGIN) == 403
