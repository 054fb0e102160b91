"""The connection limits' store in a real Redis: all or nothing under concurrent connects, refreshed
by open sockets, and forgetting those of a process that died without releasing them."""

from __future__ import annotations

import asyncio

import pytest

from service.live.limits import RedisSlots, ip_key, user_key
from tests.support.redis import RedisServer

pytestmark = pytest.mark.anyio


async def test_concurrent_acquires_take_exactly_the_limit_and_all_or_nothing(redis: RedisServer) -> None:
    slots = RedisSlots(redis.url)
    try:
        taken = await asyncio.gather(*(slots.acquire(f"c{n}", {ip_key("10.0.0.1"): 5}) for n in range(20)))
        assert sum(taken) == 5
        # The user has room, the IP has none: nothing is taken under the user's key either.
        assert not await slots.acquire("other", {user_key(1): 8, ip_key("10.0.0.1"): 5})
        assert await slots.redis.zcard(user_key(1)) == 0
        winners = [f"c{n}" for n, ok in enumerate(taken) if ok]
        await slots.release(winners[0], [ip_key("10.0.0.1")])
        assert await slots.acquire("other", {user_key(1): 8, ip_key("10.0.0.1"): 5})
    finally:
        await slots.close()


async def test_open_sockets_refresh_their_slots_and_a_dead_process_slots_expire(redis: RedisServer) -> None:
    slots = RedisSlots(redis.url)
    key = ip_key("10.0.0.2")
    try:
        assert await slots.acquire("open", {key: 2})
        before = await slots.redis.zscore(key, "open")
        await asyncio.sleep(0.01)
        await slots.refresh([("open", [key])])
        assert await slots.redis.zscore(key, "open") > before
        # A process that died without releasing: its entry was last refreshed long ago.
        await slots.redis.zadd(key, {"gone": 1})
        assert await slots.acquire("new", {key: 2})  # "gone" no longer counts
        assert set(await slots.redis.zrange(key, 0, -1)) == {b"open", b"new"}
    finally:
        await slots.close()
