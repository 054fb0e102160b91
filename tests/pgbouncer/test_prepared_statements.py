"""Through PgBouncer in transaction mode the service's statements work in and out of a transaction,
leave nothing behind on the server connections, and are still prepared once per connection; asyncpg's
defaults and SQLAlchemy's documented recipe fail there, which is why the service uses neither."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from service.db import create_engine
from tests.conftest import test_settings
from tests.pgbouncer.conftest import PooledPostgresServer

pytestmark = pytest.mark.anyio

# A statement with a parameter, so that it is prepared (a bare SELECT could go as a simple query).
ADD = text("SELECT CAST(:x AS integer) + 1")
CLIENTS, ROUNDS = 12, 10


@pytest.fixture
async def database(postgres: PooledPostgresServer) -> AsyncIterator[str]:
    url = await anyio.to_thread.run_sync(postgres.create_database, "inkwell_prepared")
    try:
        yield url
    finally:
        await anyio.to_thread.run_sync(postgres.drop_database, url)


async def load(engine: AsyncEngine) -> list[str]:
    """CLIENTS clients at once (more than PgBouncer's 5 server connections), each a few statements
    outside a transaction (as GET and HEAD run) and a few inside one; the errors they got."""
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    errors: list[str] = []

    async def client(n: int) -> None:
        for i in range(ROUNDS):
            for each in (autocommit, engine):
                try:
                    async with each.connect() as connection:
                        for k in range(3):
                            assert (
                                await connection.execute(ADD, {"x": n + i + k})
                            ).scalar_one() == n + i + k + 1
                        await connection.commit()
                except DBAPIError as error:
                    errors.append(str(error.orig))

    await asyncio.gather(*(client(n) for n in range(CLIENTS)))
    return errors


async def left_on_servers(url: str) -> int:
    """The prepared statements the server connections behind PgBouncer keep, as many as it has."""
    engine = create_engine(test_settings(url), null_pool=True)
    try:
        async with engine.connect() as connection:
            counts = [
                (await connection.execute(text("SELECT count(*) FROM pg_prepared_statements"))).scalar_one()
                for _ in range(6)
            ]
            await connection.commit()
        return int(sum(counts))
    finally:
        await engine.dispose()


async def test_the_services_statements_work_in_and_out_of_transactions_and_leave_nothing_behind(
    database: str,
) -> None:
    engine = create_engine(test_settings(database))
    try:
        assert await load(engine) == []
    finally:
        await engine.dispose()
    # Each statement of six, spread over the server connections, saw none prepared on its own.
    assert await left_on_servers(database) == 0


async def test_a_statement_is_prepared_once_per_connection_then_sent_in_one_round_trip(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepared: list[str] = []
    prepare = asyncpg.Connection.prepare

    async def counting(self: asyncpg.Connection, query: str, **kwargs: Any) -> Any:
        prepared.append(query)
        return await prepare(self, query, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "prepare", counting)
    engine = create_engine(test_settings(database, db_pool_size=1, db_max_overflow=0))
    try:
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        for i in range(20):
            async with autocommit.connect() as connection:
                assert (await connection.execute(ADD, {"x": i})).scalar_one() == i + 1
    finally:
        await engine.dispose()
    # Prepared (Parse, Describe) once; then asyncpg sends Parse again with each Bind and Execute,
    # one message PgBouncer hands to one server connection.
    assert prepared.count("SELECT CAST($1 AS integer) + 1") == 1


NAMED_EACH_TIME = {
    "statement_cache_size": 0,
    "prepared_statement_cache_size": 0,
    "prepared_statement_name_func": lambda: f"__asyncpg_{uuid.uuid4()}__",
}


@pytest.mark.parametrize(
    "connect_args",
    [
        # asyncpg's defaults: named statements, prepared once per client connection.
        {},
        # SQLAlchemy's recipe: fine in transactions, but a statement outside one is prepared and
        # bound in two round trips, which PgBouncer may give to two server connections.
        NAMED_EACH_TIME,
    ],
    ids=["asyncpg-defaults", "sqlalchemy-recipe"],
)
async def test_what_the_service_avoids_fails_through_pgbouncer(
    database: str, connect_args: dict[str, Any]
) -> None:
    engine = create_async_engine(database, connect_args=connect_args)
    try:
        errors = await load(engine)
    finally:
        await engine.dispose()
    # If this passes one day (PgBouncer 1.21's max_prepared_statements, say), the reason for the
    # service's way is gone: docs/connections.md says what to measure then.
    assert errors, "no error through PgBouncer"
    assert all("prepared statement" in error for error in errors), errors[:3]
