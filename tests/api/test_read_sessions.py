"""GET and HEAD requests read without a transaction on PostgreSQL, and cannot write at all."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select, text

from service.db import SessionDep
from service.main import create_app
from service.models import Tag
from tests.conftest import PostgresServer, test_settings
from tests.support.asgi import asgi_client

pytestmark = pytest.mark.anyio

# Two statements in one transaction see one transaction id; each on its own, two.
TRANSACTION_ID = text("SELECT txid_current()")


@pytest.fixture
async def own_app(postgres: PostgresServer) -> AsyncIterator[FastAPI]:
    """The app on a database of its own, with its real sessions (not the test's transaction)."""
    url = await anyio.to_thread.run_sync(postgres.create_database, "inkwell_read_sessions")
    app = create_app(test_settings(url))

    async def one_statement_transaction(session: SessionDep) -> bool:
        first = (await session.execute(TRANSACTION_ID)).scalar_one()
        return bool(first != (await session.execute(TRANSACTION_ID)).scalar_one())

    async def write_tag(session: SessionDep) -> str:
        await session.execute(insert(Tag).values(name="written-by-a-read"))
        return "written"

    for method in ("GET", "POST"):
        app.add_api_route("/test/transaction", one_statement_transaction, methods=[method])
    app.add_api_route("/test/write", write_tag, methods=["GET"])
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


async def test_a_get_that_tries_to_write_fails_before_anything_reaches_the_database(
    own_app: FastAPI,
) -> None:
    async with asgi_client(own_app, raise_app_exceptions=False) as client:
        response = await client.get("/test/write")
    assert response.status_code == 500
    assert "Traceback" not in response.text
    async with own_app.state.sessionmaker() as session:
        assert (await session.execute(select(Tag.name))).scalars().all() == []


async def test_the_suites_read_sessions_refuse_writes_too(app: FastAPI) -> None:
    # The suite's own wiring (tests.conftest.on_test_transaction) keeps the guard.
    async with app.state.read_sessionmaker() as session:
        with pytest.raises(RuntimeError, match="GET or HEAD"):
            await session.execute(insert(Tag).values(name="nope"))
