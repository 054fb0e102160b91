"""The bus that carries live events between processes: Redis Streams with `INKWELL_REDIS_URL`, an
in-process ring buffer with the same semantics without it (`make run`, the suite).

Streams rather than pub/sub, for replay (docs/live.md): every event is one entry of the stream
`inkwell:live`, trimmed to about `INKWELL_LIVE_REPLAY_EVENTS` entries, and its entry id is the
event's id. Each process reads it with one task doing `XREAD BLOCK` from the last id it has seen, so
after a Redis blip it resumes where it stopped, and a reconnecting client that names the last id it
saw is sent what it missed. Pub/sub would lose both.

Publishing is one pipeline of `XADD`s per unit of work, bounded by `responsive_timeout` as the
cache's Redis calls are; any failure raises `LiveUnavailable`, which the caller (the unit of work's
after-commit step) logs and counts: the write has committed, and REST answers as usual.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol

from service.deadlines import responsive_timeout
from service.live.events import Event, LiveUnavailable
from service.observability.metrics import LIVE_EVENTS_PUBLISHED, LIVE_PUBLISH_FAILURES

STREAM = "inkwell:live"
FIELD = b"event"
# XREAD blocks this long at most before it asks again: a dead connection is found by then at worst.
BLOCK_MILLISECONDS = 5_000
READ_BATCH = 500


def parse_id(event_id: str) -> tuple[int, int]:
    """A bus id (`<ms>-<seq>`) as a pair that orders as the bus does; ValueError if it is not one."""
    milliseconds, _, sequence = event_id.partition("-")
    if not milliseconds.isdigit() or not sequence.isdigit():
        raise ValueError(f"{event_id!r} is not an event id")
    return int(milliseconds), int(sequence)


class Broker(Protocol):
    """What the hub needs of a bus: publish, follow it from an id, and replay what it retains."""

    async def publish(self, events: Sequence[Event]) -> None: ...

    def follow(self) -> AsyncIterator[list[Event]]:
        """Batches of events in bus order, from now on (an empty one once connected, and whenever a
        wait ends with nothing new); raises `LiveUnavailable` when the bus is lost. Following again
        resumes after the last event it yielded."""
        ...

    async def since(self, event_id: str) -> list[Event] | None:
        """The retained events after `event_id`, oldest first; None when the bus no longer holds
        everything after it (the client must re-fetch over REST)."""
        ...

    async def close(self) -> None: ...


def _count(events: Sequence[Event]) -> None:
    for event in events:
        LIVE_EVENTS_PUBLISHED.labels(event.type).inc()


class LocalBroker:
    """One process's bus: the last `retain` events in a ring buffer, ids `<ms>-<seq>` increasing.

    Its reader is woken by an event of the reader's own loop, set from the publisher's: a test
    client may run each request on a loop of its own, and an asyncio lock or condition shared with
    the reader would be bound to whichever loop used it first."""

    def __init__(self, *, retain: int) -> None:
        self.events: deque[Event] = deque(maxlen=retain)
        self._last = (0, 0)
        # The id of the newest event that has left the buffer: what is after it is all still here.
        self._dropped = (0, 0)
        self._cursor: tuple[int, int] | None = None
        self._wake: asyncio.Event | None = None
        self._reader_loop: asyncio.AbstractEventLoop | None = None

    def _next_id(self) -> str:
        now = int(time.time() * 1000)
        milliseconds, sequence = self._last
        self._last = (now, 0) if now > milliseconds else (milliseconds, sequence + 1)
        return f"{self._last[0]}-{self._last[1]}"

    async def publish(self, events: Sequence[Event]) -> None:
        for event in events:
            if len(self.events) == self.events.maxlen:
                self._dropped = parse_id(self.events[0].id)
            self.events.append(event.with_id(self._next_id()))
        self._notify()
        _count(events)

    def _notify(self) -> None:
        wake, loop = self._wake, self._reader_loop
        if wake is None or loop is None or loop.is_closed():
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    async def follow(self) -> AsyncIterator[list[Event]]:
        self._wake, self._reader_loop = asyncio.Event(), asyncio.get_running_loop()
        if self._cursor is None:
            self._cursor = self._last
        yield []  # connected: an in-process bus always is
        while True:
            await self._wake.wait()
            # Cleared before reading: what is published from here on wakes the next wait.
            self._wake.clear()
            cursor = self._cursor
            batch = [event for event in self.events if parse_id(event.id) > cursor]
            if batch:
                self._cursor = parse_id(batch[-1].id)
                yield batch

    async def since(self, event_id: str) -> list[Event] | None:
        after = parse_id(event_id)
        if after < self._dropped:
            return None
        return [event for event in self.events if parse_id(event.id) > after]

    async def close(self) -> None:
        return None


class RedisBroker:
    """The stream `inkwell:live` in Redis, on a client of its own (not the cache's nor the limits')."""

    def __init__(self, url: str, *, retain: int, timeout: float = 0.5) -> None:
        from redis.asyncio import Redis

        self.retain = retain
        self.timeout = timeout
        # No wall-clock socket timeouts (service.deadlines); the blocking read has its own bound.
        self.redis = Redis.from_url(url, socket_timeout=None, socket_connect_timeout=None)
        # The reader's own connection: a blocking XREAD holds it for up to BLOCK_MILLISECONDS.
        self.reader = Redis.from_url(url, socket_timeout=None, socket_connect_timeout=timeout * 4)
        self._cursor: str | None = None

    async def publish(self, events: Sequence[Event]) -> None:
        from redis.exceptions import RedisError

        if not events:
            return
        try:
            async with responsive_timeout(self.timeout):
                pipeline = self.redis.pipeline(transaction=False)
                for event in events:
                    pipeline.xadd(STREAM, {FIELD: event.encode()}, maxlen=self.retain, approximate=True)
                await pipeline.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            LIVE_PUBLISH_FAILURES.inc()
            raise LiveUnavailable(str(exc) or type(exc).__name__) from exc
        _count(events)

    async def follow(self) -> AsyncIterator[list[Event]]:
        from redis.exceptions import RedisError

        try:
            if self._cursor is None:
                # From now on: the newest entry's id, or the start of an empty (or missing) stream.
                newest: Any = await self.reader.xrevrange(STREAM, count=1)
                self._cursor = newest[0][0].decode() if newest else "0-0"
            yield []  # connected: the hub takes the bus as up from here
            while True:
                answer: Any = await self.reader.xread(
                    {STREAM: self._cursor}, count=READ_BATCH, block=BLOCK_MILLISECONDS
                )
                if not answer:
                    yield []  # still connected, nothing new
                    continue
                entries = answer[0][1]
                batch = [self._decode(entry_id, fields) for entry_id, fields in entries]
                self._cursor = batch[-1].id
                yield batch
        except (RedisError, OSError) as exc:
            # The connection is dropped so that the next follow() dials again.
            await self.reader.connection_pool.disconnect()
            raise LiveUnavailable(str(exc) or type(exc).__name__) from exc

    @staticmethod
    def _decode(entry_id: bytes, fields: Mapping[bytes, bytes]) -> Event:
        return Event.decode(fields[FIELD], event_id=entry_id.decode())

    async def since(self, event_id: str) -> list[Event] | None:
        from redis.exceptions import RedisError

        after = parse_id(event_id)
        try:
            async with responsive_timeout(self.timeout * 4):
                oldest: Any = await self.redis.xrange(STREAM, count=1)
                if not oldest or parse_id(oldest[0][0].decode()) > after:
                    # The id the client saw has been trimmed (or was lost with Redis): what came
                    # between it and the oldest entry left may be gone too.
                    return None
                entries: Any = await self.redis.xrange(STREAM, min=f"({event_id}", max="+")
        except (RedisError, OSError, TimeoutError) as exc:
            raise LiveUnavailable(str(exc) or type(exc).__name__) from exc
        return [self._decode(entry_id, fields) for entry_id, fields in entries]

    async def close(self) -> None:
        await self.redis.aclose()
        await self.reader.aclose()
