"""When PostgreSQL is unreachable the API says 503 and retry, stays alive, and recovers on its own when it returns."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, make_url, text

import tests.support.postgres as postgres_support
from service.auth.security import create_token
from service.main import create_app
from service.migrate import upgrade
from tests.conftest import PostgresServer, test_settings
from tests.factories import create_user
from tests.support.asgi import asgi_client

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

DATABASE = "inkwell_faults"
OUTAGE = {"errors": {"database": ["is unavailable, retry later"]}}


def assert_outage(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json() == OUTAGE
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert int(response.headers["retry-after"]) > 0
    for leak in ("Traceback", "asyncpg", "Error", 'File "'):
        assert leak not in response.text


@pytest.fixture
def port() -> int:
    return postgres_support.free_port()


@pytest.fixture
async def down_client(port: int) -> AsyncIterator[httpx.AsyncClient]:
    """The app pointed at a port where nothing listens (yet)."""
    url = f"postgresql+asyncpg://inkwell:inkwell@127.0.0.1:{port}/{DATABASE}"
    app = create_app(test_settings(url, db_pool_timeout=2))
    try:
        async with asgi_client(app) as c:
            c.app = app  # type: ignore[attr-defined]
            yield c
    finally:
        await app.state.engine.dispose()


async def test_api_requests_answer_503_with_retry_after_when_the_database_is_down(
    down_client: httpx.AsyncClient,
) -> None:
    client = down_client
    token = create_token(client.app.state.settings, 1)  # type: ignore[attr-defined]
    requests = [
        client.get("/api/articles"),
        client.get("/api/tags"),
        client.get("/api/profiles/jake"),
        client.get("/api/user", headers={"Authorization": f"Token {token}"}),
        client.post(
            "/api/users",
            json={"user": {"username": "ghost", "email": "g@example.org", "password": "pw-123456"}},
        ),
        client.post("/api/users/login", json={"user": {"email": "g@example.org", "password": "pw-123456"}}),
        client.post(
            "/api/articles",
            json={"article": {"title": "T", "description": "d", "body": "b"}},
            headers={"Authorization": f"Token {token}"},
        ),
    ]
    for response in await asyncio.gather(*requests):
        assert_outage(response)


async def test_readiness_fails_but_liveness_holds_when_the_database_is_down(
    down_client: httpx.AsyncClient,
) -> None:
    client = down_client
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert list(ready.json()["errors"]) == ["database"]
    live = await client.get("/healthz")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})


async def test_the_same_app_serves_again_once_the_database_comes_back(
    down_client: httpx.AsyncClient, port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = down_client
    signup = {"user": {"username": "ghost", "email": "ghost@example.org", "password": "pw-123456"}}
    assert_outage(await client.post("/api/users", json=signup))
    assert_outage(await client.get("/api/articles"))
    assert (await client.get("/readyz")).status_code == 503

    # A real server now starts on the very port the app was configured with.
    monkeypatch.setattr(postgres_support, "free_port", lambda: port)
    with postgres_support.postgres_cluster() as cluster:
        assert cluster.port == port
        cluster.psql(f'CREATE DATABASE "{DATABASE}"')
        await anyio.to_thread.run_sync(upgrade, cluster.url(DATABASE))

        assert (await client.get("/readyz")).json() == {"status": "ok"}
        # The write refused during the outage left nothing behind.
        assert cluster.psql("SELECT count(*) FROM users", database=DATABASE).strip() == "0"
        listing = await client.get("/api/articles")
        assert (listing.status_code, listing.json()) == (200, {"articles": [], "articlesCount": 0})
        created = await client.post("/api/users", json=signup)
        assert created.status_code == 201, created.text
        assert created.json()["user"]["username"] == "ghost"
        assert cluster.psql("SELECT username FROM users", database=DATABASE).strip() == "ghost"
        await client.app.state.engine.dispose()  # type: ignore[attr-defined]


@pytest.fixture
async def live_app(postgres: PostgresServer) -> AsyncIterator[FastAPI]:
    url = await anyio.to_thread.run_sync(postgres.create_database, "inkwell_faults")
    app = create_app(test_settings(url))
    try:
        yield app
    finally:
        await app.state.engine.dispose()
        await anyio.to_thread.run_sync(postgres.drop_database, url)


@pytest.fixture
def kill_backend(postgres: PostgresServer) -> Callable[[int], None]:
    """Terminates a server backend from another connection, as a crash or failover would."""

    def kill(pid: int) -> None:
        async def run() -> None:
            url = make_url(postgres.admin_url)
            admin = await asyncpg.connect(
                host=url.host, port=url.port, user=url.username, password=url.password, database=url.database
            )
            try:
                await admin.execute("SELECT pg_terminate_backend($1)", pid)
            finally:
                await admin.close()

        # The app's event loop is busy inside this very request, so the kill runs on a loop of its own.
        worker = threading.Thread(target=lambda: asyncio.run(run()))
        worker.start()
        worker.join()

    return kill


async def test_a_write_cut_off_by_a_lost_connection_answers_503_and_leaves_nothing_behind(
    live_app: FastAPI, kill_backend: Callable[[int], None]
) -> None:
    engine = live_app.state.engine
    cut: list[str] = []

    def lose_connection_before_tagging(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The article and its tags are already inserted in this transaction when the connection dies.
        if statement.lstrip().upper().startswith("INSERT INTO ARTICLE_TAGS") and not cut:
            cut.append(statement)
            kill_backend(conn.connection.dbapi_connection.driver_connection.get_server_pid())

    async with asgi_client(live_app) as client:
        author = await create_user(client)
        event.listen(engine.sync_engine, "before_cursor_execute", lose_connection_before_tagging)
        try:
            response = await client.post(
                "/api/articles",
                json={
                    "article": {"title": "Half written", "description": "d", "body": "b", "tagList": ["lost"]}
                },
                headers=author.headers,
            )
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", lose_connection_before_tagging)

        assert cut, "the connection was never cut"
        assert_outage(response)
        async with engine.connect() as connection:
            for table in ("articles", "tags", "article_tags"):
                assert (await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == 0
        # The pool dropped the dead connection: the next request is served normally.
        assert (await client.get("/api/articles/half-written")).status_code == 404
        retried = await client.post(
            "/api/articles",
            json={"article": {"title": "Half written", "description": "d", "body": "b", "tagList": ["lost"]}},
            headers=author.headers,
        )
        assert retried.status_code == 201, retried.text
        assert (retried.json()["article"]["slug"], retried.json()["article"]["tagList"]) == (
            "half-written",
            ["lost"],
        )


async def test_pooled_connections_the_server_closed_are_replaced_before_a_request_uses_them(
    live_app: FastAPI, kill_backend: Callable[[int], None]
) -> None:
    # As after a restart or failover: every idle connection in the pool was closed by the server.
    # They are dropped at checkout (no ping round trip, service.db), so no request sees one.
    engine = live_app.state.engine
    async with asgi_client(live_app) as client:
        author = await create_user(client)
        pooled: list[int] = []
        event.listen(
            engine.sync_engine,
            "checkin",
            lambda dbapi_connection, _record: pooled.append(
                dbapi_connection.driver_connection.get_server_pid()
            ),
        )
        requests = [client.get("/api/articles", headers=author.headers) for _ in range(4)]
        assert all(response.status_code == 200 for response in await asyncio.gather(*requests))
        assert pooled, "no connection went back to the pool"
        for pid in set(pooled):
            kill_backend(pid)
        await asyncio.sleep(0.2)  # the server's goodbye reaches each idle connection

        for _ in range(len(set(pooled)) + 1):
            response = await client.get("/api/articles", headers=author.headers)
            assert response.status_code == 200, response.text
        created = await client.post(
            "/api/articles",
            json={"article": {"title": "After the restart", "description": "d", "body": "b"}},
            headers=author.headers,
        )
        assert created.status_code == 201, created.text


async def test_a_database_with_every_connection_taken_answers_503_and_serves_once_one_is_free() -> None:
    # What scaling out past max_connections looks like without PgBouncer (tests/pgbouncer): the
    # server refuses the connection ("too many clients"), which is an outage to retry, not a bug.
    with postgres_support.postgres_cluster(max_connections=4) as cluster:
        cluster.psql(f'CREATE DATABASE "{DATABASE}"')
        url = cluster.url(DATABASE)
        await anyio.to_thread.run_sync(upgrade, url)
        dsn = cluster.url(DATABASE, driver="asyncpg").replace("postgresql+asyncpg", "postgresql")
        taken = [await asyncpg.connect(dsn) for _ in range(4)]
        with pytest.raises(asyncpg.TooManyConnectionsError):
            await asyncpg.connect(dsn)
        app = create_app(test_settings(url))
        try:
            async with asgi_client(app) as client:
                assert_outage(await client.get("/api/articles"))
                signup = {"user": {"username": "late", "email": "late@example.org", "password": "pw-123456"}}
                assert_outage(await client.post("/api/users", json=signup))
                await taken.pop().close()
                listing = await client.get("/api/articles")
                assert (listing.status_code, listing.json()) == (200, {"articles": [], "articlesCount": 0})
        finally:
            await app.state.engine.dispose()
            for connection in taken:
                await connection.close()
