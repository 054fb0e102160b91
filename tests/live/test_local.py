"""Without Redis (`make run`): the in-process bus has the stream's semantics, and a server on it
serves sockets."""

from __future__ import annotations

import asyncio
import json

import pytest

from service.live.broker import LocalBroker, parse_id
from tests.live.conftest import comment, receive, socket
from tests.support.server import running_server, server_env

pytestmark = pytest.mark.anyio


async def test_ids_increase_replay_follows_the_last_seen_and_a_trimmed_one_asks_for_a_resync() -> None:
    broker = LocalBroker(retain=3)
    following = broker.follow()
    assert await anext(following) == []  # connected
    await broker.publish([comment("a", n) for n in range(2)])
    first = await anext(following)
    assert [event.data["comment"]["id"] for event in first] == [0, 1]
    assert parse_id(first[0].id) < parse_id(first[1].id)
    await broker.publish([comment("a", 2)])
    assert [event.data["comment"]["id"] for event in await anext(following)] == [2]
    since_first = await broker.since(first[0].id)
    assert since_first is not None
    assert [event.data["comment"]["id"] for event in since_first] == [1, 2]
    await broker.publish([comment("a", n) for n in (3, 4)])  # retains 2, 3, 4: 0 and 1 are gone
    assert await broker.since(first[0].id) is None
    replay = await broker.since(first[1].id)  # 1 itself was trimmed, but nothing after it
    assert replay is not None
    assert [event.data["comment"]["id"] for event in replay] == [2, 3, 4]
    await following.aclose()


async def test_a_server_without_redis_serves_sockets() -> None:
    with running_server(server_env()) as server:
        async with socket(server) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            assert await asyncio.wait_for(receive(ws), 30) == {"type": "pong"}
