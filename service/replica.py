"""Reads on a streaming replica, with every client still reading its own writes.

With INKWELL_DATABASE_READ_URL set, the read-only units of work of GET and HEAD may run on a
PostgreSQL streaming replica. Whether one does is decided, when it opens, from positions in the
write-ahead log (LSNs) rather than from a time window: a window long enough for the worst lag
sends most reads to the primary for nothing, and one shorter than the lag of the moment serves
stale reads. A read runs on the replica when the replica has replayed everything it must see:

- the reader's own writes: each write records, per user it was for (the signed-in writer, the
  user an admin changed, a new registration), the LSN its commit reached on the primary
  (`pg_current_wal_insert_lsn()` after COMMIT, one autocommit round trip). It is kept where every
  pod sees it (Redis; in memory in a single development process), marked "pending" before the
  commit so that a write acknowledged to its client is never followed by that client's stale read;
- for a cached public read being built (a miss), the LSN of the last write that invalidated the
  cache scopes it is stored under (`service.cache`): otherwise a lagging replica's answer, read
  after a write's invalidation, would be cached under the new generation and served to everyone.

Each process reads the replica's replay position every db_replica_check_seconds (and the
primary's current position, to measure the lag as the age of what the replica has replayed: how
long ago the primary was where the replica is now). A replica that does not answer, answers as a
primary, or lags more than db_read_max_lag_seconds serves no read until a later check finds it
well; a replica that refuses a connection when a read opens is taken out at once, and that read
runs on the primary. What each read did is counted in inkwell_db_reads_total{database, reason}.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.deadlines import responsive_timeout
from service.errors import ServiceUnavailable
from service.observability.metrics import (
    DB_READS,
    DB_REPLICA_LAG,
    DB_REPLICA_LAG_BYTES,
    DB_REPLICA_LAG_LIMIT,
    DB_REPLICA_UP,
    READ_ROUTES,
)

logger = structlog.get_logger("inkwell.replica")

# The ASGI scope key under which the response cache tells the request's unit of work the LSN of the
# last write to the scopes a missed read will be cached under (service.cache, service.dependencies).
READ_AFTER = "inkwell.read_after"
# An LSN beyond any the primary will reach: what a write whose own LSN could not be read counts as,
# so that what must see it reads on the primary until the record expires.
UNKNOWN_LSN = 2**62

_COUNTERS = {route: DB_READS.labels(*route) for route in READ_ROUTES}


def parse_lsn(text: str) -> int:
    """PostgreSQL's `pg_lsn` text ("16/B374D848") as a number."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


class WriteLogUnavailable(Exception):
    """Where the users' last writes are kept cannot be reached."""


class WriteLog(Protocol):
    """Per user, the LSN the reads of that user must see: that of their last write."""

    async def pending(self, users: Iterable[int]) -> None:
        """Before a commit: until `committed`, these users' reads run on the primary."""

    async def committed(self, users: Iterable[int], lsn: int) -> None:
        """After it: these users' reads need a replica that has replayed `lsn`."""

    async def last(self, user: int) -> int:
        """The LSN `user`'s reads must see; 0 when none is recorded."""

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Lifetimes:
    """How long a record must outlive its write. A committed one: until any replica that serves
    reads at all has replayed it, which the lag limit bounds (a read is served when the lag is
    under the limit, and a check finds it so within an interval). A pending one: until its commit
    has surely ended one way or the other, or its process died."""

    committed: int
    pending: int = 120

    @classmethod
    def of(cls, settings: Settings) -> Lifetimes:
        bound = settings.db_read_max_lag_seconds + 2 * settings.db_replica_check_seconds
        return cls(committed=math.ceil(bound) + 5)


class LocalWriteLog:
    """In this process: only coherent with one process (development and test)."""

    def __init__(self, lifetimes: Lifetimes) -> None:
        self.lifetimes = lifetimes
        self.records: dict[int, tuple[float, int]] = {}

    async def pending(self, users: Iterable[int]) -> None:
        expires = time.monotonic() + self.lifetimes.pending
        for user in users:
            self.records[user] = (expires, UNKNOWN_LSN)

    async def committed(self, users: Iterable[int], lsn: int) -> None:
        now = time.monotonic()
        for user in users:
            found = self.records.get(user)
            # A later write of the same user may have committed first: keep the later position.
            if found is None or found[0] <= now or found[1] == UNKNOWN_LSN or found[1] < lsn:
                self.records[user] = (now + self.lifetimes.committed, lsn)
        if len(self.records) > 100_000:
            self.records = {user: found for user, found in self.records.items() if found[0] > now}

    async def last(self, user: int) -> int:
        found = self.records.get(user)
        return found[1] if found is not None and found[0] > time.monotonic() else 0

    async def close(self) -> None:
        self.records.clear()


# Kept unless a later position is recorded already; a pending mark is always replaced.
_COMMITTED = """
for i, key in ipairs(KEYS) do
  local found = redis.call('GET', key)
  if not found or found == 'pending' or tonumber(found) < tonumber(ARGV[1]) then
    redis.call('SET', key, ARGV[1], 'EX', ARGV[2])
  end
end
"""
_PREFIX = "inkwell:wrote:"


class RedisWriteLog:
    """In Redis, shared by every process and pod."""

    def __init__(self, url: str, lifetimes: Lifetimes, *, timeout: float = 0.5) -> None:
        from redis.asyncio import Redis

        self.lifetimes = lifetimes
        # Bounded by `timeout` of the loop's attention, as the cache is (service.deadlines): a
        # saturated loop is no Redis outage, and must not refuse writes.
        self.timeout = timeout
        self.redis = Redis.from_url(url, socket_timeout=None, socket_connect_timeout=None)
        self.record = self.redis.register_script(_COMMITTED)

    async def pending(self, users: Iterable[int]) -> None:
        from redis.exceptions import RedisError

        try:
            async with responsive_timeout(self.timeout), self.redis.pipeline(transaction=False) as pipe:
                for user in users:
                    pipe.set(f"{_PREFIX}{user}", "pending", ex=self.lifetimes.pending)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise WriteLogUnavailable(str(exc)) from exc

    async def committed(self, users: Iterable[int], lsn: int) -> None:
        from redis.exceptions import RedisError

        try:
            async with responsive_timeout(self.timeout):
                await self.record(
                    keys=[f"{_PREFIX}{user}" for user in users], args=[lsn, self.lifetimes.committed]
                )
        except (RedisError, OSError) as exc:
            raise WriteLogUnavailable(str(exc)) from exc

    async def last(self, user: int) -> int:
        from redis.exceptions import RedisError

        try:
            async with responsive_timeout(self.timeout):
                found = await self.redis.get(f"{_PREFIX}{user}")
        except (RedisError, OSError) as exc:
            raise WriteLogUnavailable(str(exc)) from exc
        if found is None:
            return 0
        return UNKNOWN_LSN if found == b"pending" else int(found)

    async def close(self) -> None:
        await self.redis.aclose()


class Committing(Protocol):
    """What the hook below reads of a unit of work (`service.db.UnitOfWork`)."""

    @property
    def changes(self) -> object: ...
    @property
    def readers(self) -> AbstractSet[int]: ...
    @property
    def commit_lsn(self) -> int: ...


class RecordWrites:
    """The write log's hook on every commit (a `service.db.CommitHook`): the users the write is
    for marked pending before it (a write never commits while its record cannot be kept: 503), and
    at its position after it (a failure then is logged; the pending mark keeps them on the primary)."""

    def __init__(self, writes: WriteLog) -> None:
        self.writes = writes

    async def before_commit(self, uow: Committing) -> None:
        if uow.changes and uow.readers:
            try:
                await self.writes.pending(uow.readers)
            except WriteLogUnavailable as exc:
                # Committed, the writer's next read could miss this write on the replica.
                raise ServiceUnavailable(
                    "redis", "is unavailable, so writes wait until it is back; retry later"
                ) from exc

    async def after_commit(self, uow: Committing) -> None:
        if uow.changes and uow.readers:
            await self.writes.committed(uow.readers, uow.commit_lsn)


def create_write_log(settings: Settings) -> WriteLog:
    lifetimes = Lifetimes.of(settings)
    if settings.redis_url:
        return RedisWriteLog(settings.redis_url, lifetimes)
    # Settings refuse a replica without Redis outside development and test.
    return LocalWriteLog(lifetimes)


@dataclass(frozen=True)
class Position:
    """What a check found: the LSN the replica has replayed, how old that was, and when it looked
    (monotonic seconds; 0 where it does not matter)."""

    replayed: int
    lag_seconds: float
    lag_bytes: int
    at: float = 0.0

    def lag_by(self, now: float) -> float:
        """The most the replica can be behind by `now`: what the check measured, plus the time since
        (a check that hangs does not leave reads on a replica that falls behind meanwhile)."""
        return self.lag_seconds + max(now - self.at, 0.0) if self.at else self.lag_seconds


_REPLICA_POSITION = "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text"
_PRIMARY_POSITION = "SELECT pg_current_wal_lsn()::text"
# The primary's current LSN after a commit: at or past the end of that commit's record.
_COMMIT_POSITION = "SELECT pg_current_wal_insert_lsn()::text"


class Replica:
    """A streaming replica's engine, where it stands, and which reads it may serve."""

    def __init__(
        self, engine: AsyncEngine, primary: AsyncEngine, *, writes: WriteLog, settings: Settings
    ) -> None:
        self.engine = engine
        self.writes = writes
        self.max_lag = settings.db_read_max_lag_seconds
        DB_REPLICA_LAG_LIMIT.set(self.max_lag)  # the alert on the lag counts from a share of it
        self.interval = settings.db_replica_check_seconds
        self._replica_probe = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._primary = primary
        self._primary_probe = primary.execution_options(isolation_level="AUTOCOMMIT")
        self.position: Position | None = None
        # (monotonic time, the primary's LSN then), over a little more than the lag limit.
        self._history: deque[tuple[float, int]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._state = ""

    # Deciding ------------------------------------------------------------------------------------

    async def serves(self, *, reader: int | None, read_after: int) -> bool:
        """Whether a read that must see the `reader`'s last write and LSN `read_after` may run on
        the replica; counted either way."""
        self.start()
        position = self.position
        if position is None:
            return self._count("primary", "unavailable")
        if position.lag_by(time.monotonic()) > self.max_lag:
            return self._count("primary", "lagging")
        if reader is not None:
            try:
                own = await self.writes.last(reader)
            except WriteLogUnavailable:
                # Whether this user wrote what the replica lacks cannot be known: the primary knows.
                own = UNKNOWN_LSN
            if own > position.replayed:
                return self._count("primary", "own_write")
        if read_after > position.replayed:
            return self._count("primary", "cache_fill")
        return self._count("replica", "replayed")

    def _count(self, database: str, reason: str) -> bool:
        _COUNTERS[(database, reason)].inc()
        return database == "replica"

    def refused(self, exc: BaseException) -> None:
        """A read found the replica gone: no read goes there until a check finds it well. Called by
        the unit of work, which goes on on the primary (that read is counted twice: on the
        replica, and as unavailable)."""
        self._count("primary", "unavailable")
        if self.position is not None:
            self._report("unavailable", error=type(exc).__name__)
        self.position = None

    # Committing ----------------------------------------------------------------------------------

    async def commit_position(self) -> int:
        """The primary's LSN just after a commit, in one round trip: on a pooled connection, outside
        any transaction, through the driver (SQLAlchemy's statement handling costs as much again)."""
        async with self._primary.connect() as connection:
            driver: Any = (await connection.get_raw_connection()).driver_connection
            return parse_lsn(await driver.fetchval(_COMMIT_POSITION))

    # Checking ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Checks from now on (the app's start-up; else its first read), until `close`."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._check_forever())

    async def _check_forever(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.interval)

    async def check(self) -> Position | None:
        """Reads where the primary and the replica stand, and decides whether the replica serves."""
        try:
            # Not the pools' timeout: a check that waits for a connection says nothing meanwhile.
            async with asyncio.timeout(self.max_lag):
                async with self._primary_probe.connect() as connection:
                    primary = parse_lsn((await connection.exec_driver_sql(_PRIMARY_POSITION)).scalar_one())
                now = time.monotonic()
                async with self._replica_probe.connect() as connection:
                    recovering, replayed = (await connection.exec_driver_sql(_REPLICA_POSITION)).one()
        except Exception as exc:  # noqa: BLE001 - whatever fails, the replica serves nothing
            self.position = None
            self._report("unavailable", error=f"{type(exc).__name__}: {exc}"[:300])
            return None
        if not recovering or replayed is None:
            # Promoted, or the URL names a primary: its reads would not follow this primary's writes.
            self.position = None
            self._report("not_a_replica")
            return None
        self._history.append((now, primary))
        while len(self._history) > 2 and self._history[1][0] < now - self.max_lag - 2 * self.interval:
            self._history.popleft()
        position = self._measure(parse_lsn(replayed), now, primary)
        self.position = position
        DB_REPLICA_LAG.set(position.lag_seconds)
        DB_REPLICA_LAG_BYTES.set(position.lag_bytes)
        if position.lag_seconds > self.max_lag:
            self._report("lagging", lag_seconds=round(position.lag_seconds, 3))
        else:
            self._report("serving")
        return position

    def _measure(self, replayed: int, now: float, primary: int) -> Position:
        """The lag is the age of the newest primary position the replica has replayed: zero when it
        has replayed the latest, else the time since the primary was first seen beyond it."""
        lag = 0.0
        if replayed < primary:
            # The first check that saw the primary beyond what the replica has replayed.
            beyond = next((seen for seen, lsn in self._history if lsn > replayed), now)
            lag = now - beyond
            if self._history and self._history[0][1] > replayed:
                # Behind the oldest position kept: at least that old, and beyond the limit.
                lag = max(lag, self.max_lag + self.interval)
        return Position(replayed=replayed, lag_seconds=lag, lag_bytes=max(primary - replayed, 0), at=now)

    def _report(self, state: str, **details: object) -> None:
        DB_REPLICA_UP.set(1 if state == "serving" else 0)
        if state != self._state:
            log = logger.info if state == "serving" else logger.warning
            log("read replica " + state.replace("_", " "), **details)
            self._state = state

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.writes.close()
        await self.engine.dispose()
