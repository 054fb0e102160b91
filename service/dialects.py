"""Everything that differs between SQLite (the embedded default of `make run`) and PostgreSQL
(staging and production), behind one small interface, so no repository names a database.

A `Dialect` answers the few questions the rest of the code would otherwise ask by dialect name:
how to open and prepare an engine, how read-only work runs, how to add a row that a concurrent
request may be adding too, how to return an ordered list of values as one column, and which
driver errors mean the text could not be stored. Statements built with a dialect are built once
per dialect and reused (see `service.articles.repository`).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, cast

from sqlalchemy import ARRAY, DateTime, Dialect, String, TypeDecorator, event, func, type_coerce
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ColumnElement, Insert, Select
from sqlalchemy.types import TypeEngine


class _AwareOnSQLite(TypeDecorator[datetime]):
    """SQLite keeps no time zone and hands back naive datetimes; everything is stored in UTC."""

    impl = DateTime
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


# A timestamp column that reads back time-zone aware on both databases.
UtcDateTime = DateTime(timezone=True).with_variant(_AwareOnSQLite(), "sqlite")


class _PositionedJsonList(TypeDecorator[list[str]]):
    """SQLite's JSON array of [position, value] pairs, as the values in position order."""

    impl = String
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> list[str]:
        if value is None:
            return []
        return [item for _position, item in sorted(json.loads(value))]


class InkwellDialect(ABC):
    """What one database needs done its own way. Instances are singletons: `SQLITE`, `POSTGRESQL`."""

    name: ClassVar[str]
    # Whether the engine gets the configured connection pool (SQLite keeps SQLAlchemy's default).
    pooled: ClassVar[bool]
    # Execution options for work that only reads.
    read_only_options: ClassVar[dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"<dialect {self.name}>"

    def engine_options(self, url: URL) -> dict[str, Any]:
        return {}

    @abstractmethod
    def prepare(self, engine: AsyncEngine) -> None:
        """Installs the engine's connection-level behaviour (pragmas, pool checks)."""

    @abstractmethod
    def insert_or_ignore(self, table: Any, *, index_elements: list[str] | None = None) -> Insert:
        """`INSERT ... ON CONFLICT DO NOTHING`: the race-free way to add a row that a concurrent
        request may be adding too (a tag, a favourite, a user)."""

    @abstractmethod
    def ordered_list(self, rows: Select[Any]) -> ColumnElement[list[str]]:
        """The values of `rows` (a correlated SELECT of position, value) in position order, as one
        column of the enclosing SELECT: a page of articles and their tags in one statement."""

    def is_unstorable_text(self, exc: BaseException) -> bool:
        """The driver refused text it cannot store (after input validation, the net under it)."""
        return False

    def is_write_conflict(self, exc: BaseException) -> bool:
        """The database gave up this transaction for a concurrent one (a deadlock between their
        row locks, a serialization failure): nothing was written, and trying again is safe."""
        return False


class _SQLite(InkwellDialect):
    name = "sqlite"
    pooled = False

    def engine_options(self, url: URL) -> dict[str, Any]:
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        return {"connect_args": {"timeout": 30}}

    def prepare(self, engine: AsyncEngine) -> None:
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

    def insert_or_ignore(self, table: Any, *, index_elements: list[str] | None = None) -> Insert:
        return sqlite_insert(table).on_conflict_do_nothing(index_elements=index_elements)

    def ordered_list(self, rows: Select[Any]) -> ColumnElement[list[str]]:
        # SQLite 3.40 has no ORDER BY inside an aggregate: the positions come along, and the
        # result type sorts by them.
        position, value = rows.selected_columns
        pairs = rows.with_only_columns(func.json_group_array(func.json_array(position, value)))
        return type_coerce(pairs.scalar_subquery(), _PositionedJsonList())


class _PostgreSQL(InkwellDialect):
    name = "postgresql"
    pooled = True
    # GET and HEAD run without BEGIN and COMMIT: each statement reads its own snapshot, which no
    # read here needs otherwise (a list is one statement), and two round trips of each read go.
    read_only_options = {"isolation_level": "AUTOCOMMIT"}
    # character_not_in_repertoire, untranslatable_character
    _UNSTORABLE_TEXT = frozenset({"22021", "22P05"})
    # serialization_failure, deadlock_detected
    _WRITE_CONFLICTS = frozenset({"40001", "40P01"})

    def prepare(self, engine: AsyncEngine) -> None:
        """Hands out no pooled connection the server has closed, without a round trip per request.

        When PostgreSQL restarts, fails over or terminates a backend, it closes the socket and
        asyncpg notices while the connection idles in the pool; raising DisconnectionError at
        checkout makes the pool drop it and connect anew (SQLAlchemy's "pessimistic" disconnect
        handling). `pool_pre_ping` would catch the same cases with three round trips (BEGIN, a
        ping, ROLLBACK) on every checkout, more than the rest of a signed-in list's transaction. A
        connection that dies silently (no FIN) is caught by the statement that uses it: 503, and
        the pool is invalidated.
        """

        @event.listens_for(engine.sync_engine, "checkout")
        def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            if dbapi_connection.driver_connection.is_closed():
                raise DisconnectionError("the server closed this pooled connection")

    def insert_or_ignore(self, table: Any, *, index_elements: list[str] | None = None) -> Insert:
        return postgresql_insert(table).on_conflict_do_nothing(index_elements=index_elements)

    def ordered_list(self, rows: Select[Any]) -> ColumnElement[list[str]]:
        # ARRAY(subquery): against a window count or a join this halved a list's execution time.
        position, value = rows.selected_columns
        values = rows.with_only_columns(value).order_by(position).scalar_subquery()
        return type_coerce(func.array(values), cast("TypeEngine[list[str]]", ARRAY(String)))

    def is_unstorable_text(self, exc: BaseException) -> bool:
        return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in self._UNSTORABLE_TEXT

    def is_write_conflict(self, exc: BaseException) -> bool:
        # The triggers of migration 0002 lock tags' and users' rows in one order (tag ids sorted,
        # the count of all articles deferred to the commit); this is the net under that order.
        return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in self._WRITE_CONFLICTS


SQLITE = _SQLite()
POSTGRESQL = _PostgreSQL()
_BY_NAME: dict[str, InkwellDialect] = {dialect.name: dialect for dialect in (SQLITE, POSTGRESQL)}


def of(backend: str | URL | AsyncEngine) -> InkwellDialect:
    """The dialect of a backend name ("sqlite"), a URL or an engine."""
    if isinstance(backend, AsyncEngine):
        name = backend.dialect.name
    elif isinstance(backend, URL):
        name = backend.get_backend_name()
    else:
        name = str(backend)
    try:
        return _BY_NAME[name]
    except KeyError:
        raise RuntimeError(f"unsupported database dialect {name!r}") from None
