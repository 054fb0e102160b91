"""How many sockets a user and a client IP may hold open at once, across every process and pod.

With Redis, each limited key (`inkwell:live:conn:user:<id>`, `inkwell:live:conn:ip:<ip>`) is a sorted
set of connection ids scored by when they expire; one Lua script drops the expired ones, counts, and
adds the new connection only if it fits, so concurrent connects on many pods cannot all squeeze in.
An open socket refreshes its entries every `ttl / 3`, so the entries of a process that died without
closing them expire by themselves within `ttl`. Without Redis, a set per key in the process.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Protocol

from service.deadlines import responsive_timeout
from service.live.events import LiveUnavailable

TTL_SECONDS = 60.0
_PREFIX = "inkwell:live:conn:"

# KEYS: the sets; ARGV: connection id, ttl in ms, then one limit per key. 1 when taken, else 0.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZSCORE', key, ARGV[1]) == false and redis.call('ZCARD', key) >= tonumber(ARGV[2 + i]) then
    return 0
  end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', key, tonumber(ARGV[2]))
end
return 1
"""
_REFRESH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', key, tonumber(ARGV[2]))
end
return 1
"""


def ip_key(ip: str) -> str:
    return f"{_PREFIX}ip:{ip}"


def user_key(user_id: int) -> str:
    return f"{_PREFIX}user:{user_id}"


class Slots(Protocol):
    async def acquire(self, connection: str, limits: dict[str, int]) -> bool:
        """Takes a slot under each key for `connection` if every key has one free; all or none."""
        ...

    async def refresh(self, held: list[tuple[str, list[str]]]) -> None:
        """Extends the slots of every open connection (its id and keys) by the ttl, at once."""
        ...

    async def release(self, connection: str, keys: list[str]) -> None: ...

    async def close(self) -> None: ...


class LocalSlots:
    def __init__(self) -> None:
        self.held: defaultdict[str, set[str]] = defaultdict(set)

    async def acquire(self, connection: str, limits: dict[str, int]) -> bool:
        if any(
            connection not in self.held[key] and len(self.held[key]) >= limit for key, limit in limits.items()
        ):
            return False
        for key in limits:
            self.held[key].add(connection)
        return True

    async def refresh(self, held: list[tuple[str, list[str]]]) -> None:
        return None

    async def release(self, connection: str, keys: list[str]) -> None:
        for key in keys:
            self.held[key].discard(connection)
            if not self.held[key]:
                del self.held[key]

    async def close(self) -> None:
        return None


class RedisSlots:
    def __init__(self, url: str, *, timeout: float = 0.5, ttl: float = TTL_SECONDS) -> None:
        from redis.asyncio import Redis

        self.timeout = timeout
        self.ttl_ms = int(ttl * 1000)
        self.redis = Redis.from_url(url, socket_timeout=None, socket_connect_timeout=None)
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._refresh = self.redis.register_script(_REFRESH)

    async def acquire(self, connection: str, limits: dict[str, int]) -> bool:
        from redis.exceptions import RedisError

        try:
            async with responsive_timeout(self.timeout):
                taken = await self._acquire(
                    keys=list(limits), args=[connection, self.ttl_ms, *limits.values()]
                )
        except (RedisError, OSError, TimeoutError) as exc:
            raise LiveUnavailable(str(exc) or type(exc).__name__) from exc
        return bool(taken)

    async def refresh(self, held: list[tuple[str, list[str]]]) -> None:
        from redis.exceptions import RedisError

        if not held:
            return
        try:
            # One round trip for the process's sockets, however many.
            async with responsive_timeout(self.timeout * 4):
                pipeline = self.redis.pipeline(transaction=False)
                for connection, keys in held:
                    await self._refresh(keys=keys, args=[connection, self.ttl_ms], client=pipeline)
                await pipeline.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            raise LiveUnavailable(str(exc) or type(exc).__name__) from exc

    async def release(self, connection: str, keys: list[str]) -> None:
        from redis.exceptions import RedisError

        try:
            async with responsive_timeout(self.timeout):
                pipeline = self.redis.pipeline(transaction=False)
                for key in keys:
                    pipeline.zrem(key, connection)
                await pipeline.execute()
        except (RedisError, OSError, TimeoutError):
            return  # its entries expire within the ttl by themselves

    async def close(self) -> None:
        await self.redis.aclose()
