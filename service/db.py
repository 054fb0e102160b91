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
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
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
    kwargs: dict[str, Any] = {"echo": settings.db_echo, "pool_pre_ping": True}
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
    return engine


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


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
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


def insert_or_ignore(session: AsyncSession, model: Any, *, index_elements: list[str] | None = None) -> Any:
    """`INSERT ... ON CONFLICT DO NOTHING` for the session's dialect: the race-free way to add a row
    that a concurrent request may be adding too (a tag, a favourite, a follow)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql_insert(model).on_conflict_do_nothing(index_elements=index_elements)
    if dialect == "sqlite":
        return sqlite_insert(model).on_conflict_do_nothing(index_elements=index_elements)
    raise RuntimeError(f"unsupported database dialect {dialect!r}")
