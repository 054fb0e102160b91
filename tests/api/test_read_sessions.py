"""GET and HEAD requests read without a transaction on PostgreSQL, and cannot write at all: not through
the unit of work's writing door, not through its reading door, not by changing loaded entities."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, select, update

from service.db import Database, ReadOnlyViolation, create_engine
from service.dependencies import UnitOfWorkDep
from service.main import create_app
from service.migrate import upgrade
from service.models import Tag, User
from tests.conftest import PostgresServer, test_settings
from tests.support.asgi import asgi_client

pytestmark = pytest.mark.anyio

# Two statements in one transaction see one transaction id; each on its own, two.
TRANSACTION_ID = select(func.txid_current())


@pytest.fixture
async def own_app(postgres: PostgresServer) -> AsyncIterator[FastAPI]:
    """The app on a database of its own, with its real units of work (not the test's transaction)."""
    url = await anyio.to_thread.run_sync(postgres.create_database, "inkwell_read_sessions")
    app = create_app(test_settings(url))

    async def one_statement_transaction(uow: UnitOfWorkDep) -> bool:
        first = (await uow.read.rows(TRANSACTION_ID)).scalar_one()
        return bool(first != (await uow.read.rows(TRANSACTION_ID)).scalar_one())

    async def write_tag(uow: UnitOfWorkDep) -> str:
        await uow.write(insert(Tag).values(name="written-by-a-read"))
        return "written"

    async def write_tag_through_the_reading_door(uow: UnitOfWorkDep) -> str:
        await uow.read.rows(insert(Tag).values(name="written-through-reads"))  # type: ignore[arg-type]
        return "written"

    for method in ("GET", "POST"):
        app.add_api_route("/test/transaction", one_statement_transaction, methods=[method])
    app.add_api_route("/test/write", write_tag, methods=["GET"])
    app.add_api_route("/test/write-core", write_tag_through_the_reading_door, methods=["GET", "POST"])
    try:
        yield app
    finally:
        await app.state.engine.dispose()
        await anyio.to_thread.run_sync(postgres.drop_database, url)


async def test_a_get_reads_each_statement_on_its_own_and_a_post_in_one_transaction(own_app: FastAPI) -> None:
    async with asgi_client(own_app) as client:
        assert (await client.get("/test/transaction")).json() is True
        assert (await client.post("/test/transaction")).json() is False
        # The API's own reads work the same way.
        assert (await client.get("/api/articles")).json() == {"articles": [], "articlesCount": 0}


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_write_through_either_door_of_a_get_fails_before_anything_reaches_the_database(
    own_app: FastAPI, method: str
) -> None:
    async with asgi_client(own_app, raise_app_exceptions=False) as client:
        if method == "GET":
            assert (await client.get("/test/write")).status_code == 500
        # The reading door only reads, whatever the method: on PostgreSQL a GET runs in autocommit,
        # where a write that got through would commit.
        response = await client.request(method, "/test/write-core")
    assert response.status_code == 500
    assert "Traceback" not in response.text
    async with own_app.state.database.unit_of_work(writable=False) as uow:
        assert (await uow.read.rows(select(Tag.name))).scalars().all() == []


@pytest.fixture(params=["postgresql", "sqlite"])
async def fresh_database(
    request: pytest.FixtureRequest, postgres: PostgresServer, tmp_path: Path
) -> AsyncIterator[Database]:
    """A migrated database of its own, PostgreSQL or SQLite, holding one user."""
    if request.param == "postgresql":
        url = await anyio.to_thread.run_sync(postgres.create_database, "inkwell_read_only")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'inkwell.db'}"
        await anyio.to_thread.run_sync(upgrade, url)
    engine = create_engine(test_settings(url))
    try:
        database = Database(engine)
        async with database.unit_of_work(writable=True) as uow:
            uow.add(User(username="reader", email="reader@example.org", password_hash="x", role="viewer"))
        yield database
    finally:
        await engine.dispose()
        if request.param == "postgresql":
            await anyio.to_thread.run_sync(postgres.drop_database, url)


async def change_an_entity_in_a_read(database: Database) -> None:
    async with database.unit_of_work(writable=False) as uow:
        user = (await uow.read.entities(select(User))).one()
        user.bio = "changed by a read"


async def test_a_read_only_unit_refuses_every_kind_of_write_on_either_database(
    fresh_database: Database,
) -> None:
    database = fresh_database
    async with database.unit_of_work(writable=True) as uow:
        await uow.write(insert(Tag).values(name="kept"))
    async with database.unit_of_work(writable=False) as uow:
        with pytest.raises(ReadOnlyViolation):
            await uow.write(insert(Tag).values(name="nope"))
        with pytest.raises(ReadOnlyViolation):
            await uow.read.rows(update(Tag).values(name="renamed"))  # type: ignore[arg-type]
        with pytest.raises(ReadOnlyViolation):
            uow.add(Tag(name="added"))
    with pytest.raises(ReadOnlyViolation):
        await change_an_entity_in_a_read(database)
    async with database.unit_of_work(writable=False) as uow:
        assert (await uow.read.rows(select(Tag.name))).scalars().all() == ["kept"]
        assert (await uow.read.entities(select(User))).one().bio != "changed by a read"


async def test_the_suites_units_of_work_refuse_writes_too(app: FastAPI) -> None:
    # The suite's own wiring (tests.conftest.on_test_transaction) keeps the guard.
    async with app.state.database.unit_of_work(writable=False) as uow:
        with pytest.raises(ReadOnlyViolation, match="GET or HEAD"):
            await uow.write(insert(Tag).values(name="nope"))
        with pytest.raises(ReadOnlyViolation):
            await uow.read.rows(insert(Tag).values(name="nope"))  # type: ignore[arg-type]
