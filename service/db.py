"""The database: its engine, and the unit of work every request (or job) reads and writes through.

A unit of work owns one session. It knows whether it may write; it records what each write touched
(the table, and which articles' rows) as the repositories write it, so no service can forget to
say; and it commits on success, rolls back on error, and runs the hooks registered on the
`Database` around the commit: `before_commit` inside the transaction (a hook that cannot do its
part refuses the write), `after_commit` once it is durable (cache invalidation today; live events
and jobs next). Nothing else commits.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import structlog
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
from service.observability.metrics import TimedAsyncAdaptedQueuePool

logger = structlog.get_logger("inkwell.db")

Entity = TypeVar("Entity")


def create_engine(settings: Settings, *, null_pool: bool = False) -> AsyncEngine:
    url = make_url(settings.database_url)
    dialect = dialects.of(url)
    kwargs: dict[str, Any] = {
        "echo": settings.db_echo,
        **dialect.engine_options(url, pooler=settings.database_pooler),
    }
    if null_pool:
        kwargs["poolclass"] = NullPool
    elif dialect.pooled:
        kwargs.update(
            poolclass=TimedAsyncAdaptedQueuePool,
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


class Reads:
    """A unit of work's reading door: SELECTs only, as Core rows (plain columns, without the ORM's
    statement and result handling) or as ORM entities, on the unit's connection."""

    __slots__ = ("_session",)

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def rows(self, query: Select[Any], params: Mapping[str, Any] | None = None) -> Result[Any]:
        _only_reads(query)
        # On the session's connection: SQLAlchemy Core alone; these rows need no entities.
        return await (await self._session.connection()).execute(query, params)

    async def entities(
        self, query: Select[tuple[Entity]], params: Mapping[str, Any] | None = None
    ) -> ScalarResult[Entity]:
        _only_reads(query)
        return (await self._session.execute(query, params)).scalars()

    async def get(self, model: type[Entity], ident: Any) -> Entity | None:
        return await self._session.get(model, ident)


class UnitOfWork:
    """One request's (or job's) work on the database: see the module's docstring."""

    __slots__ = ("_after_commit", "_session", "changes", "dialect", "read", "writable")

    def __init__(self, session: AsyncSession, *, writable: bool, dialect: dialects.InkwellDialect) -> None:
        self._session = session
        self.writable = writable
        self.dialect = dialect
        self.read = Reads(session)
        self.changes = Changes()
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

    def savepoint(self) -> AsyncSessionTransaction:
        """A nested transaction: what fails inside it is undone alone, and the unit goes on."""
        self._refuse_if_read_only()
        return self._session.begin_nested()

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
    """The engine's two kinds of unit of work, and the hooks every commit runs."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = dialects.of(engine)
        self._hooks: list[CommitHook] = []
        self._write_sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        options = self.dialect.read_only_options
        read_engine = engine.execution_options(**options) if options else engine
        self._read_sessions = async_sessionmaker(read_engine, expire_on_commit=False, autoflush=False)

    def on_commit(self, hook: CommitHook) -> None:
        self._hooks.append(hook)

    def use_sessions(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Every unit of work from now on runs on `sessions` (the suite's: joined to a test's
        transaction); read-only ones still only read."""
        self._write_sessions = self._read_sessions = sessions

    @contextlib.asynccontextmanager
    async def unit_of_work(self, *, writable: bool) -> AsyncIterator[UnitOfWork]:
        sessions = self._write_sessions if writable else self._read_sessions
        async with sessions() as session:
            uow = UnitOfWork(session, writable=writable, dialect=self.dialect)
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
                translated = self._translate(exc)
                if translated is None:
                    raise
                raise translated from exc

    async def _commit(self, uow: UnitOfWork, session: AsyncSession) -> None:
        if session.new or session.dirty or session.deleted:
            await uow.save()
        for hook in self._hooks:
            await hook.before_commit(uow)
        await session.commit()
        # The write is durable and the client will be told so: what fails from now on is logged.
        steps: list[Callable[[], object]] = [*uow._after_commit]
        steps += [functools.partial(hook.after_commit, uow) for hook in self._hooks]
        for step in steps:
            try:
                result = step()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("an after-commit step failed", step=repr(step))

    def _translate(self, exc: Exception) -> ConduitError | None:
        if isinstance(exc, ConduitError):
            return None
        if is_outage(exc):
            return ServiceUnavailable("database")
        if self.dialect.is_unstorable_text(exc):
            # Input validation refuses NUL characters; this is the net under anything it missed.
            return Unprocessable({"request": ["contains characters that cannot be stored"]})
        if isinstance(exc, IntegrityError) or self.dialect.is_write_conflict(exc):
            # A concurrent request changed the same rows (deleted the article being favourited,
            # took the slug being set, locked them first): nothing was written, and trying again
            # is safe.
            return Conflict({"request": ["conflicts with a concurrent change; retry"]})
        return None
