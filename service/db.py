"""The database: its engine, and the unit of work every request (or job) reads and writes through.

A unit of work owns one session. It knows whether it may write; it records what each write touched
(the table, and which articles' rows) as the repositories write it, so no service can forget to
say; and it commits on success, rolls back on error, and runs the hooks registered on the
`Database` around the commit: `before_commit` inside the transaction (a hook that cannot do its
part refuses the write), `after_commit` once it is durable (cache invalidation, live events; jobs
next). Nothing else commits.

The live events a unit emits (`emit`) are kept on it and handed over only after the commit
(`service.live.commit`): a unit that rolls back, and a savepoint that does, take theirs with them.
Nothing here retries a unit: a client's retry (after a 409) is a new unit with events of its own.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import structlog
from opentelemetry import propagate
from sqlalchemy import CompoundSelect, Result, ScalarResult, Select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    AsyncSessionTransaction,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.dml import UpdateBase

from service import dialects
from service.config import Settings
from service.errors import ConduitError, Conflict, ServiceUnavailable, Unprocessable
from service.live.events import Event
from service.observability.metrics import ReplicaTimedAsyncAdaptedQueuePool, TimedAsyncAdaptedQueuePool
from service.replica import UNKNOWN_LSN, Replica

logger = structlog.get_logger("inkwell.db")

Entity = TypeVar("Entity")


def create_engine(settings: Settings, *, null_pool: bool = False, replica: bool = False) -> AsyncEngine:
    """The primary's engine, or with `replica` the read replica's (its pool sized as the primary's)."""
    url = make_url(settings.database_read_url if replica else settings.database_url)
    dialect = dialects.of(url)
    kwargs: dict[str, Any] = {
        "echo": settings.db_echo,
        **dialect.engine_options(url, pooler=settings.database_pooler),
    }
    if null_pool:
        kwargs["poolclass"] = NullPool
    elif dialect.pooled:
        kwargs.update(
            poolclass=ReplicaTimedAsyncAdaptedQueuePool if replica else TimedAsyncAdaptedQueuePool,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
        )
    engine = create_async_engine(url, **kwargs)
    dialect.prepare(engine)
    return engine


def is_outage(exc: BaseException) -> bool:
    """The database (or the way to it) is not there: an availability problem, not a defect."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if dialects.refuses_for_now(exc):
        return True
    # The driver raises plain socket errors when the server is not there at all.
    return isinstance(exc, ConnectionError | TimeoutError | OSError) and not isinstance(
        exc, FileNotFoundError
    )


class ReadOnlyViolation(RuntimeError):
    """Something tried to write through a door that only reads: a bug, refused before the database."""


class Changes:
    """What a unit of work wrote: per table, the slugs of the articles whose rows it touched, or None
    when the write may have touched any row of the table."""

    __slots__ = ("_tables",)

    def __init__(self) -> None:
        self._tables: dict[str, set[str] | None] = {}

    def add(self, table: str, articles: Iterable[str] | None) -> None:
        if articles is None:
            self._tables[table] = None
            return
        known = self._tables.setdefault(table, set())
        if known is not None:
            known.update(articles)

    def items(self) -> Iterable[tuple[str, frozenset[str] | None]]:
        for table, articles in self._tables.items():
            yield table, None if articles is None else frozenset(articles)

    def __bool__(self) -> bool:
        return bool(self._tables)

    def __repr__(self) -> str:
        return f"Changes({self._tables!r})"


def _only_reads(statement: Any) -> None:
    if not isinstance(statement, Select | CompoundSelect):
        raise ReadOnlyViolation(f"only SELECTs are read through here, not {type(statement).__name__}")


Fallback = Callable[[BaseException], Awaitable[AsyncSession]]
_TRACE_CONTEXT = frozenset({"traceparent", "tracestate"})
Outcome = TypeVar("Outcome")


class Reads:
    """A unit of work's reading door: SELECTs only, as Core rows (plain columns, without the ORM's
    statement and result handling) or as ORM entities, on the unit's connection.

    On a replica, a statement that finds it gone (a closed connection, a refused one) runs again on
    the primary through `fallback`, and so does the rest of the unit: a read-only unit runs each
    statement on its own snapshot (autocommit), so nothing it read before depends on where."""

    __slots__ = ("_fallback", "_session")

    def __init__(self, session: AsyncSession, *, fallback: Fallback | None = None) -> None:
        self._session = session
        self._fallback = fallback

    async def _run(self, statement: Callable[[AsyncSession], Awaitable[Outcome]]) -> Outcome:
        try:
            return await statement(self._session)
        except Exception as exc:
            if self._fallback is None or not is_outage(exc):
                raise
            fallback, self._fallback = self._fallback, None
            self._session = await fallback(exc)
            return await statement(self._session)

    async def rows(self, query: Select[Any], params: Mapping[str, Any] | None = None) -> Result[Any]:
        _only_reads(query)

        async def run(session: AsyncSession) -> Result[Any]:
            # On the session's connection: SQLAlchemy Core alone; these rows need no entities.
            return await (await session.connection()).execute(query, params)

        return await self._run(run)

    async def entities(
        self, query: Select[tuple[Entity]], params: Mapping[str, Any] | None = None
    ) -> ScalarResult[Entity]:
        _only_reads(query)

        async def run(session: AsyncSession) -> ScalarResult[Entity]:
            return (await session.execute(query, params)).scalars()

        return await self._run(run)

    async def get(self, model: type[Entity], ident: Any) -> Entity | None:
        return await self._run(lambda session: session.get(model, ident))


class UnitOfWork:
    """One request's (or job's) work on the database: see the module's docstring."""

    __slots__ = (
        "_after_commit",
        "_session",
        "changes",
        "commit_lsn",
        "dialect",
        "events",
        "read",
        "readers",
        "writable",
    )

    def __init__(
        self,
        session: AsyncSession,
        *,
        writable: bool,
        dialect: dialects.InkwellDialect,
        fallback: Fallback | None = None,
    ) -> None:
        self._session = session
        self.writable = writable
        self.dialect = dialect
        self.read = Reads(session, fallback=fallback)
        self.changes = Changes()
        # The users whose next reads must see this unit's writes: the signed-in writer, a user an
        # admin changed, a new registration (read on the primary until a replica has them).
        self.readers: set[int] = set()
        # With a replica: the primary's LSN once this unit committed (0 before, or without one).
        self.commit_lsn = 0
        # The live events of this unit's writes, in the order they were made: published once it
        # commits (`service.live.commit.PublishOnCommit`), dropped with it if it rolls back.
        self.events: list[Event] = []
        self._after_commit: list[Callable[[], object]] = []

    def _refuse_if_read_only(self) -> None:
        if not self.writable:
            raise ReadOnlyViolation("a read-only unit of work (a GET or HEAD request) tried to write")

    async def write(
        self,
        statement: UpdateBase,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        articles: Iterable[str] | None = None,
    ) -> Result[Any]:
        """Runs an INSERT, UPDATE or DELETE; `articles` are the slugs of the articles whose rows it
        touches (None: it may touch any row of its table)."""
        self._refuse_if_read_only()
        table = getattr(statement, "table", None)
        if table is None:
            raise TypeError(f"{type(statement).__name__} is not a write to one table")
        self.changes.add(table.name, articles)
        return await self._session.execute(statement, params)

    def add(self, *entities: object) -> None:
        """New entities, written at the next `save` or at the commit."""
        self._refuse_if_read_only()
        self._session.add_all(entities)

    async def save(self) -> None:
        """Writes the changes made to loaded entities now (so a constraint fails here, inside a
        savepoint if there is one), recording their tables."""
        self._refuse_if_read_only()
        session = self._session
        for entity in (*session.new, *session.dirty, *session.deleted):
            self.changes.add(entity.__table__.name, None)
        await session.flush()

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[AsyncSessionTransaction]:
        """A nested transaction: what fails inside it is undone alone, and the unit goes on; so are
        the events emitted inside it, which describe writes that never happened."""
        self._refuse_if_read_only()
        emitted = len(self.events)
        try:
            async with self._session.begin_nested() as nested:
                yield nested
        except BaseException:
            del self.events[emitted:]
            raise

    def emit(self, topic: str, type_: str, data: Mapping[str, Any]) -> None:
        """A live event (`service.live.events`) of a write this unit made, published once the unit
        commits and never if it rolls back. It carries the W3C trace context current now (the
        writing request's span), so its deliveries link to the write."""
        self._refuse_if_read_only()
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        # Only the trace context: baggage is the caller's to send upstream, not to put on the bus.
        trace = {key: value for key, value in carrier.items() if key in _TRACE_CONTEXT}
        self.events.append(Event(topic=topic, type=type_, data=data, trace=trace))

    def after_commit(self, callback: Callable[[], object]) -> None:
        """Runs `callback` (a function, or a coroutine function) once the unit has committed, and
        never if it rolls back."""
        self._after_commit.append(callback)


class CommitHook(Protocol):
    """What must happen around every commit, registered once on the `Database` at wiring time."""

    async def before_commit(self, uow: UnitOfWork) -> None:
        """Inside the transaction: raising refuses the write (it is rolled back)."""

    async def after_commit(self, uow: UnitOfWork) -> None:
        """The write is durable; a failure here is logged, never reported to the writer as one."""


class Database:
    """The engine's two kinds of unit of work, and the hooks every commit runs; with a read replica,
    which of the read-only units run on it (`service.replica`)."""

    def __init__(self, engine: AsyncEngine, *, replica: Replica | None = None) -> None:
        self.engine = engine
        self.dialect = dialects.of(engine)
        self.replica = replica
        self._hooks: list[CommitHook] = []
        self._write_sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        self._read_sessions = self._read_only_sessions(engine)
        self._replica_sessions = self._read_only_sessions(replica.engine) if replica else None

    def _read_only_sessions(self, engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
        options = self.dialect.read_only_options
        read_engine = engine.execution_options(**options) if options else engine
        return async_sessionmaker(read_engine, expire_on_commit=False, autoflush=False)

    def on_commit(self, hook: CommitHook) -> None:
        self._hooks.append(hook)

    def use_sessions(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Every unit of work from now on runs on `sessions` (the suite's: joined to a test's
        transaction); read-only ones still only read, and none on a replica."""
        self._write_sessions = self._read_sessions = sessions
        self._replica_sessions = None

    def start(self) -> None:
        if self.replica is not None:
            self.replica.start()

    async def close(self) -> None:
        if self.replica is not None:
            await self.replica.close()

    @contextlib.asynccontextmanager
    async def unit_of_work(
        self, *, writable: bool, reader: int | None = None, read_after: int = 0, primary: bool = False
    ) -> AsyncIterator[UnitOfWork]:
        """A unit of work. A read-only one runs on the replica when there is one and it has replayed
        `reader`'s last write and the LSN `read_after`, else (or with `primary`) on the primary."""
        sessions, fallback = self._write_sessions if writable else self._read_sessions, None
        replica_sessions = None if writable or primary else self._replica_sessions
        if replica_sessions and await self._on_replica(reader, read_after):
            sessions, fallback = replica_sessions, self._fall_back
        async with sessions() as session, contextlib.AsyncExitStack() as on_primary:
            uow = UnitOfWork(
                session,
                writable=writable,
                dialect=self.dialect,
                fallback=functools.partial(fallback, on_primary) if fallback else None,
            )
            try:
                yield uow
                if writable:
                    await self._commit(uow, session)
                elif session.new or session.dirty or session.deleted:
                    raise ReadOnlyViolation(
                        "a read-only unit of work (a GET or HEAD request) changed entities"
                    )
            except Exception as exc:
                with contextlib.suppress(Exception):
                    await session.rollback()
                translated = self._translate(exc, uow_writable=writable)
                if translated is None:
                    raise
                raise translated from exc

    async def _on_replica(self, reader: int | None, read_after: int) -> bool:
        return self.replica is not None and await self.replica.serves(reader=reader, read_after=read_after)

    async def _fall_back(self, on_primary: contextlib.AsyncExitStack, exc: BaseException) -> AsyncSession:
        """The replica is gone: this read goes on on the primary, and so do the next until a check
        finds it back."""
        assert self.replica is not None
        self.replica.refused(exc)
        return await on_primary.enter_async_context(self._read_sessions())

    async def _commit(self, uow: UnitOfWork, session: AsyncSession) -> None:
        if session.new or session.dirty or session.deleted:
            await uow.save()
        for hook in self._hooks:
            await hook.before_commit(uow)
        await session.commit()
        # The write is durable and the client will be told so: what fails from now on is logged.
        if self.replica is not None and uow.changes:
            # For the hooks after it: the write log's records, the cache's generations.
            try:
                uow.commit_lsn = await self.replica.commit_position()
            except Exception:
                # Until the records expire, what must see this write reads on the primary.
                logger.exception("reading the commit's position failed")
                uow.commit_lsn = UNKNOWN_LSN
        steps: list[Callable[[], object]] = [*uow._after_commit]
        steps += [functools.partial(hook.after_commit, uow) for hook in self._hooks]
        for step in steps:
            try:
                result = step()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("an after-commit step failed", step=repr(step))

    def _translate(self, exc: Exception, *, uow_writable: bool) -> ConduitError | None:
        if isinstance(exc, ConduitError):
            return None
        if is_outage(exc):
            return ServiceUnavailable("database")
        if self.dialect.is_unstorable_text(exc):
            # Input validation refuses NUL characters; this is the net under anything it missed.
            return Unprocessable({"request": ["contains characters that cannot be stored"]})
        if self.dialect.is_write_conflict(exc) and not uow_writable:
            # A hot standby cancels a read that conflicts with what it replays (40001).
            return ServiceUnavailable("database", "cancelled this read while it replayed a write; retry")
        if isinstance(exc, IntegrityError) or self.dialect.is_write_conflict(exc):
            # A concurrent request changed the same rows (deleted the article being favourited,
            # took the slug being set, locked them first): nothing was written, and trying again
            # is safe.
            return Conflict({"request": ["conflicts with a concurrent change; retry"]})
        return None
