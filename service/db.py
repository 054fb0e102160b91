"""The database engine and the per-request session: commit on success, roll back on error."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction
from sqlalchemy.pool import NullPool

from service.cache import CacheUnavailable, ResponseCache, written_scopes
from service.config import Settings
from service.errors import Conflict, ServiceUnavailable, Unprocessable, is_database_outage
from service.observability.metrics import TimedAsyncAdaptedQueuePool

# character_not_in_repertoire, untranslatable_character
_UNSTORABLE_TEXT = {"22021", "22P05"}

logger = structlog.get_logger("inkwell.db")


def create_engine(settings: Settings, *, null_pool: bool = False) -> AsyncEngine:
    url = make_url(settings.database_url)
    kwargs: dict[str, Any] = {"echo": settings.db_echo}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    elif not null_pool:
        kwargs.update(
            poolclass=TimedAsyncAdaptedQueuePool,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
        )
    if null_pool:
        kwargs["poolclass"] = NullPool
    engine = create_async_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        _configure_sqlite(engine)
    else:
        _discard_closed_connections(engine)
    return engine


def _discard_closed_connections(engine: AsyncEngine) -> None:
    """Hands out no pooled connection the server has closed, without a round trip per request.

    When PostgreSQL restarts, fails over or terminates a backend, it closes the socket and
    asyncpg notices while the connection idles in the pool; raising DisconnectionError at checkout
    makes the pool drop it and connect anew (SQLAlchemy's "pessimistic" disconnect handling).
    `pool_pre_ping` would catch the same cases with three round trips (BEGIN, a ping, ROLLBACK) on
    every checkout, more than the rest of a signed-in list's transaction. A connection that dies
    silently (no FIN) is caught by the statement that uses it: 503, and the pool is invalidated.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("the server closed this pooled connection")


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Foreign keys on, WAL, and SAVEPOINT-capable transactions (SQLAlchemy's pysqlite recipe)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself, so SAVEPOINT and rollback behave as on PostgreSQL.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, so concurrent writers queue instead of failing.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def create_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for GET and HEAD, which only read: on PostgreSQL without BEGIN and COMMIT.

    Each statement then reads its own snapshot, which no read here needs otherwise (a list is one
    statement), and two of a read's round trips go. A write from such a session is a bug and is
    refused before it reaches the database (`_refuse_writes`).
    """
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info={READ_ONLY: True})


READ_ONLY = "inkwell_read_only"
_SAFE_METHODS = frozenset({"GET", "HEAD"})


@event.listens_for(Session, "do_orm_execute")
def _refuse_writes(state: ORMExecuteState) -> None:
    if state.session.info.get(READ_ONLY) and (state.is_insert or state.is_update or state.is_delete):
        raise RuntimeError("a GET or HEAD request tried to write; its session only reads")


@event.listens_for(Session, "before_flush")
def _refuse_flushes(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    if session.info.get(READ_ONLY) and (session.new or session.dirty or session.deleted):
        raise RuntimeError("a GET or HEAD request tried to write; its session only reads")


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] = (
        request.app.state.read_sessionmaker
        if request.method in _SAFE_METHODS
        else request.app.state.sessionmaker
    )
    async with sessionmaker() as session:
        try:
            yield session
            # Runs before the response is sent (scope="function" below): a client is never told
            # a write succeeded that did not commit, and the next read sees it (service/cache.py).
            cache: ResponseCache = request.app.state.cache
            scopes = written_scopes(session)
            if scopes:
                await cache.invalidate(scopes)
            await session.commit()
            if scopes:
                try:
                    await cache.invalidate(scopes)
                except CacheUnavailable:
                    logger.warning("cache invalidation after commit failed", scopes=sorted(scopes))
        except Exception as exc:
            with contextlib.suppress(Exception):
                await session.rollback()
            if isinstance(exc, CacheUnavailable):
                raise ServiceUnavailable(
                    "cache", "is unavailable, so writes wait until it is back; retry later"
                ) from exc
            if is_database_outage(exc):
                raise ServiceUnavailable("database") from exc
            if isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in _UNSTORABLE_TEXT:
                # Input validation refuses NUL characters; this is the net under anything it missed.
                raise Unprocessable({"request": ["contains characters that cannot be stored"]}) from exc
            if isinstance(exc, IntegrityError):
                # A concurrent request changed the same rows (deleted the article being favourited,
                # took the slug being set): nothing was written, and trying again is safe.
                raise Conflict({"request": ["conflicts with a concurrent change; retry"]}) from exc
            raise


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def insert_or_ignore(
    session: AsyncSession | str, model: Any, *, index_elements: list[str] | None = None
) -> Any:
    """`INSERT ... ON CONFLICT DO NOTHING` for the session's dialect (or the dialect named): the
    race-free way to add a row that a concurrent request may be adding too (a tag, a favourite)."""
    dialect = session if isinstance(session, str) else session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql_insert(model).on_conflict_do_nothing(index_elements=index_elements)
    if dialect == "sqlite":
        return sqlite_insert(model).on_conflict_do_nothing(index_elements=index_elements)
    raise RuntimeError(f"unsupported database dialect {dialect!r}")
