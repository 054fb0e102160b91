"""What the replica's router decides from positions alone: the lag it measures from the checks it
made, the users' last writes it keeps, and which reads it lets the replica serve."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from service import replica as replica_module
from service.config import Settings
from service.replica import (
    UNKNOWN_LSN,
    Lifetimes,
    LocalWriteLog,
    Position,
    RedisWriteLog,
    Replica,
    WriteLog,
    WriteLogUnavailable,
    parse_lsn,
)
from tests.conftest import test_settings
from tests.support.redis import RedisServer, redis_server

pytestmark = pytest.mark.anyio

SETTINGS: Settings = test_settings(
    "postgresql+asyncpg://u:p@127.0.0.1:1/primary",
    database_read_url="postgresql+asyncpg://u:p@127.0.0.1:1/replica",
    db_read_max_lag_seconds=5,
    db_replica_check_seconds=0.5,
)


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
async def router() -> AsyncIterator[Replica]:
    # Engines that are never connected: these tests feed the positions themselves.
    engine = create_async_engine("sqlite+aiosqlite://")
    router = Replica(engine, engine, writes=LocalWriteLog(Lifetimes.of(SETTINGS)), settings=SETTINGS)
    router.start = lambda: None  # type: ignore[method-assign] # no checks behind the test's back
    yield router
    await router.close()


async def test_lsns_are_read_as_postgresql_writes_them() -> None:
    assert parse_lsn("0/0") == 0
    assert parse_lsn("0/16B3748") == 0x16B3748
    assert parse_lsn("16/B374D848") == (0x16 << 32) + 0xB374D848


async def test_the_lag_is_the_age_of_what_the_replica_has_replayed(router: Replica) -> None:
    # Checks at 0, 1 and 2 s saw the primary at 100, 200 and 300.
    router._history.extend([(0.0, 100), (1.0, 200), (2.0, 300)])
    assert router._measure(300, 2.0, 300) == Position(replayed=300, lag_seconds=0.0, lag_bytes=0, at=2.0)
    # Replayed 250: the primary was first seen beyond it at 2 s (it was at 200 at 1 s).
    assert router._measure(250, 2.5, 300).lag_seconds == pytest.approx(0.5)
    # Replayed 150: it lacks what the primary had at 1 s.
    behind = router._measure(150, 2.5, 300)
    assert behind.lag_seconds == pytest.approx(1.5)
    assert behind.lag_bytes == 150


async def test_a_check_that_hangs_leaves_no_read_on_the_replica(router: Replica) -> None:
    now = time.monotonic()
    router.position = Position(replayed=100, lag_seconds=0.5, lag_bytes=0, at=now - 1)
    assert await router.serves(reader=None, read_after=0)
    router.position = Position(replayed=100, lag_seconds=0.5, lag_bytes=0, at=now - 5)  # 5.5 s by now
    assert not await router.serves(reader=None, read_after=0)


async def test_a_replica_behind_every_position_kept_is_beyond_the_limit(router: Replica) -> None:
    router._history.extend([(10.0, 1000), (11.0, 1100)])
    assert router._measure(900, 11.0, 1100).lag_seconds > SETTINGS.db_read_max_lag_seconds


async def test_an_idle_primary_means_no_lag_however_old_the_last_write(router: Replica) -> None:
    router._history.extend([(0.0, 500), (60.0, 500)])
    assert router._measure(500, 60.0, 500).lag_seconds == 0


async def test_reads_go_where_what_they_must_see_has_been_replayed(router: Replica) -> None:
    def counted(database: str, reason: str) -> float:
        return replica_module._COUNTERS[(database, reason)]._value.get()  # type: ignore[attr-defined,no-any-return]

    before = {route: counted(*route) for route in replica_module._COUNTERS}
    assert not await router.serves(reader=None, read_after=0)  # never checked: unknown
    router.position = Position(replayed=1000, lag_seconds=0.2, lag_bytes=0)
    assert await router.serves(reader=None, read_after=0)
    assert await router.serves(reader=None, read_after=1000)
    assert not await router.serves(reader=None, read_after=1001)  # a cached scope's newer write
    await router.writes.committed([7], 1200)
    assert not await router.serves(reader=7, read_after=0)  # their own write
    assert await router.serves(reader=8, read_after=0)  # someone else's
    router.position = Position(replayed=5000, lag_seconds=5.5, lag_bytes=10)
    assert not await router.serves(reader=None, read_after=0)  # too far behind for anyone
    router.position = Position(replayed=1200, lag_seconds=0.2, lag_bytes=0)
    assert await router.serves(reader=7, read_after=0)
    router.refused(ConnectionRefusedError())  # it went down: that read runs on the primary
    assert router.position is None
    assert not await router.serves(reader=None, read_after=0)  # and so do the next, until a check
    delta = {route: counted(*route) - before[route] for route in replica_module._COUNTERS}
    assert delta == {
        ("replica", "replayed"): 4,
        ("primary", "own_write"): 1,
        ("primary", "cache_fill"): 1,
        ("primary", "lagging"): 1,
        ("primary", "unavailable"): 3,
    }


async def test_without_the_write_log_a_signed_in_reader_reads_on_the_primary(router: Replica) -> None:
    class Down(LocalWriteLog):
        async def last(self, user: int) -> int:
            raise WriteLogUnavailable("connection refused")

    router.writes = Down(Lifetimes.of(SETTINGS))
    router.position = Position(replayed=1000, lag_seconds=0, lag_bytes=0)
    assert not await router.serves(reader=7, read_after=0)
    assert await router.serves(reader=None, read_after=0)


@pytest.mark.parametrize("kind", ["local", "redis"])
async def test_a_users_last_write_is_kept_pending_then_at_its_position(kind: str, redis: RedisServer) -> None:
    lifetimes = Lifetimes.of(SETTINGS)
    log: WriteLog = LocalWriteLog(lifetimes) if kind == "local" else RedisWriteLog(redis.url, lifetimes)
    try:
        assert await log.last(41) == 0
        await log.pending([41, 42])
        assert await log.last(41) == await log.last(42) == UNKNOWN_LSN  # committing: the primary only
        await log.committed([41, 42], 5_000_000_000)
        assert await log.last(41) == 5_000_000_000
        await log.committed([41], 4_000)  # an earlier write of theirs, recorded late
        assert await log.last(41) == 5_000_000_000
        await log.pending([41])
        await log.committed([41], 6_000_000_000)
        assert await log.last(41) == 6_000_000_000
        assert await log.last(43) == 0
    finally:
        await log.close()


async def test_records_outlive_any_lag_the_replica_serves_reads_at() -> None:
    lifetimes = Lifetimes.of(SETTINGS)
    assert lifetimes.committed > SETTINGS.db_read_max_lag_seconds + 2 * SETTINGS.db_replica_check_seconds
    assert lifetimes.pending > lifetimes.committed
