"""Everything that differs between SQLite (the embedded default of `make run`) and PostgreSQL
(staging and production), behind one small interface, so no repository names a database.

A `Dialect` answers the few questions the rest of the code would otherwise ask by dialect name:
how to open and prepare an engine (directly, or through a pooler such as PgBouncer), how read-only
work runs, how to add a row that a concurrent request may be adding too, how to return an ordered
list of values as one column, and which driver errors mean the text could not be stored or the
server would not take a connection now. Statements built with a dialect are built once
per dialect and reused (see `service.articles.repository`).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from enum import StrEnum
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


class Pooler(StrEnum):
    """What stands between the service and its database."""

    none = "none"
    # PgBouncer in transaction mode: each transaction (or statement outside one) may run on another
    # server connection, so nothing may rely on what an earlier one left on its connection.
    pgbouncer = "pgbouncer"


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

    def engine_options(self, url: URL, *, pooler: Pooler = Pooler.none) -> dict[str, Any]:
        """create_async_engine's arguments for this database, reached directly or through `pooler`."""
        if pooler is not Pooler.none:
            raise ValueError(f"{self.name} is not reached through a pooler ({pooler})")
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

    def code_point_order(self, column: ColumnElement[str]) -> ColumnElement[str]:
        """`column` to sort by code point, whatever the database's locale: SQLite's default
        (BINARY) collation already does, and so does Python's `sorted`."""
        return column

    def is_unstorable_text(self, exc: BaseException) -> bool:
        """The driver refused text it cannot store (after input validation, the net under it)."""
        return False

    def is_write_conflict(self, exc: BaseException) -> bool:
        """The database gave up this transaction for a concurrent one (a deadlock between their
        row locks, a serialization failure): nothing was written, and trying again is safe."""
        return False

    def refuses_for_now(self, exc: BaseException) -> bool:
        """The server (or a pooler in front of it) would not take a connection at the moment: too
        many clients, starting up. An outage to retry, not a defect."""
        return False


class _SQLite(InkwellDialect):
    name = "sqlite"
    pooled = False

    def engine_options(self, url: URL, *, pooler: Pooler = Pooler.none) -> dict[str, Any]:
        super().engine_options(url, pooler=pooler)
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
    # too_many_connections, cannot_connect_now (starting up, shutting down, in recovery).
    _REFUSED_FOR_NOW = frozenset({"53300", "57P03"})

    def engine_options(self, url: URL, *, pooler: Pooler = Pooler.none) -> dict[str, Any]:
        """Directly, asyncpg's defaults: each statement is prepared once per connection under a name
        and then sent as Bind/Execute only. Through PgBouncer's transaction pooling (1.18 keeps no
        prepared statement for a client) the next transaction may run on a server connection that
        never saw that name: "prepared statement __asyncpg_stmt_1__ does not exist", or "already
        exists" where another client used it. SQLAlchemy's recipe (no caches, a uuid for each name)
        fixes transactions but not the reads of GET and HEAD, which run outside one (read_only_options):
        asyncpg's Parse and its Bind are two round trips, and each may land on another server
        connection. It also costs a third round trip per statement, to close it, on whichever server
        connection that lands: the one it was prepared on keeps it (67 on one after 500 transactions).

        So statements are unnamed, with asyncpg's own cache off: asyncpg then sends each one's Parse
        again in the same message as its Bind and Execute (connection.py, "mark_unprepared"), which
        PgBouncer hands to one server connection, in a transaction or not, and which leaves nothing on
        it. SQLAlchemy's cache still keeps the statement's description, so after the first time on a
        connection a statement is one round trip, as directly; PostgreSQL parses and plans it each
        time. What that costs, measured by bench.pooler, is in docs/connections.md.
        """
        if pooler is Pooler.none:
            return {}
        return {
            "connect_args": {
                "statement_cache_size": 0,
                "prepared_statement_name_func": _unnamed,
                # asyncpg asks for client_encoding 'utf-8', quotes included; PgBouncer 1.18 compares
                # that with the server's UTF8 as text and sends `SET client_encoding` before every
                # transaction to make them agree (PostgreSQL's statement log shows it): a statement
                # and a round trip more per request. Asked for as the server says it, none is sent.
                # Only parameters PgBouncer tracks may go here: it refuses a client that sends any
                # other (jit, statement_timeout) unless told to ignore it. Set those on the role.
                "server_settings": {"client_encoding": "UTF8"},
            }
        }

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

    def code_point_order(self, column: ColumnElement[str]) -> ColumnElement[str]:
        return column.collate("C")

    def is_unstorable_text(self, exc: BaseException) -> bool:
        return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in self._UNSTORABLE_TEXT

    def is_write_conflict(self, exc: BaseException) -> bool:
        # The triggers of migration 0002 lock tags' and users' rows in one order (tag ids sorted,
        # the count of all articles deferred to the commit); this is the net under that order.
        return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in self._WRITE_CONFLICTS

    def refuses_for_now(self, exc: BaseException) -> bool:
        # Refused while connecting, asyncpg's error reaches us as it is, not wrapped by SQLAlchemy.
        # PgBouncer words all of its refusals (max_client_conn, a failing login) as class 08.
        sqlstate = getattr(exc.orig if isinstance(exc, DBAPIError) else exc, "sqlstate", None)
        return isinstance(sqlstate, str) and (sqlstate in self._REFUSED_FOR_NOW or sqlstate.startswith("08"))


def _unnamed() -> str:
    """asyncpg's name for the unnamed statement, which each Parse replaces."""
    return ""


SQLITE = _SQLite()
POSTGRESQL = _PostgreSQL()
_BY_NAME: dict[str, InkwellDialect] = {dialect.name: dialect for dialect in (SQLITE, POSTGRESQL)}


def refuses_for_now(exc: BaseException) -> bool:
    """Whichever the database, it would not take a connection at the moment (see the method)."""
    return any(dialect.refuses_for_now(exc) for dialect in _BY_NAME.values())


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
