"""Through PgBouncer the service rides out what it rides out directly: PgBouncer restarting (the
pool drops the connections it closed, and no request sees one), PostgreSQL going away behind it
(503 and retry, not ready) and coming back (served again, on its own), and PgBouncer refusing a
client (503)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from launch.pgbouncer import Pooling
from service.main import create_app
from service.migrate import upgrade
from tests.conftest import test_settings
from tests.factories import create_user
from tests.faults.test_database_down import assert_outage
from tests.support.asgi import asgi_client
from tests.support.pgbouncer import PgBouncer, pgbouncer
from tests.support.postgres import PostgresCluster, postgres_cluster

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# Short, for a test: a transaction waits 3 s for a server connection, and after a failed login
# PgBouncer tries PostgreSQL again within a second.
POOLING = Pooling(pool_size=4, query_wait_timeout=3, server_login_retry=1)


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    with postgres_cluster() as cluster:
        cluster.psql('CREATE DATABASE "inkwell"')
        upgrade(cluster.url("inkwell"))
        yield cluster


@pytest.fixture
def bouncer(cluster: PostgresCluster) -> Iterator[PgBouncer]:
    with pgbouncer(cluster.url("inkwell"), POOLING) as running:
        yield running


@pytest.fixture
async def app(bouncer: PgBouncer) -> AsyncIterator[FastAPI]:
    # No cache: every request below is to reach the database.
    app = create_app(test_settings(bouncer.url("inkwell"), db_pool_timeout=5, cache_enabled=False))
    try:
        yield app
    finally:
        await app.state.engine.dispose()


async def fill_the_pool(client: httpx.AsyncClient) -> None:
    """Several requests at once, so that the pool holds several idle connections afterwards."""
    responses = await asyncio.gather(*(client.get("/api/articles") for _ in range(4)))
    assert [r.status_code for r in responses] == [200] * 4


async def test_connections_pgbouncer_closed_on_restart_are_replaced_before_a_request_uses_them(
    app: FastAPI, bouncer: PgBouncer
) -> None:
    dropped: list[object] = []
    event.listen(app.state.engine.sync_engine.pool, "invalidate", lambda *args: dropped.append(args))
    async with asgi_client(app) as client:
        author = await create_user(client)
        await fill_the_pool(client)
        bouncer.stop()
        bouncer.start()
        await asyncio.sleep(0.2)  # PgBouncer's goodbye reaches each idle connection

        for _ in range(6):
            response = await client.get("/api/articles", headers=author.headers)
            assert response.status_code == 200, response.text
        created = await client.post(
            "/api/articles",
            json={"article": {"title": "After the restart", "description": "d", "body": "b"}},
            headers=author.headers,
        )
        assert created.status_code == 201, created.text
    # They were closed, and found so at checkout (service.dialects), not by a failing request.
    assert dropped


async def test_postgresql_gone_behind_pgbouncer_answers_503_and_its_return_is_served_on_its_own(
    app: FastAPI, cluster: PostgresCluster
) -> None:
    async with asgi_client(app) as client:
        await fill_the_pool(client)
        await anyio.to_thread.run_sync(cluster.stop)

        # The pool's connections to PgBouncer are still open; what they ask for is refused, or
        # waits for a server connection up to query_wait_timeout and is then refused.
        with anyio.fail_after(30):
            assert_outage(await client.get("/api/articles"))
            assert_outage(await client.get("/api/articles"))
            signup = {"user": {"username": "ghost", "email": "ghost@example.org", "password": "pw-123456"}}
            assert_outage(await client.post("/api/users", json=signup))
            assert (await client.get("/readyz")).status_code == 503

        await anyio.to_thread.run_sync(cluster.start)
        with anyio.fail_after(60):
            served = await client.get("/api/articles")
            while served.status_code != 200:
                assert_outage(served)
                await anyio.sleep(0.2)
                served = await client.get("/api/articles")
        assert (await client.get("/readyz")).json() == {"status": "ok"}
        created = await client.post("/api/users", json=signup)
        assert created.status_code == 201, created.text


async def test_a_client_pgbouncer_has_no_room_for_answers_503(cluster: PostgresCluster) -> None:
    with pgbouncer(cluster.url("inkwell"), Pooling(max_client_conn=1)) as full:
        app = create_app(test_settings(full.url("inkwell"), cache_enabled=False))
        try:
            async with asgi_client(app) as client:
                assert (await client.get("/api/articles")).status_code == 200
                # Four at once: the pool's one connection serves one, the others need a
                # connection of their own, and PgBouncer takes no second client.
                burst = await asyncio.gather(*(client.get("/api/articles") for _ in range(4)))
                after = await client.get("/api/articles")
        finally:
            await app.state.engine.dispose()
    refused = [response for response in burst if response.status_code != 200]
    assert refused
    for response in refused:
        assert_outage(response)
    assert after.status_code == 200
