"""Fixtures: a real PostgreSQL migrated once, and per test a transaction that is rolled back.

Set INKWELL_TEST_DATABASE_URL (an asyncpg URL of a role that may create databases) to use an
existing server; otherwise a private cluster is started for the session and removed after it.
tests/pgbouncer/ runs a part of the suite again through PgBouncer, in front of the same server;
tests/replica/ has a private cluster of its own, with a streaming replica of it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from service.config import Settings
from service.db import create_engine
from service.main import create_app
from service.migrate import upgrade
from tests.support.asgi import asgi_client
from tests.support.kube import Kube, cluster
from tests.support.pgbouncer import pooler_of
from tests.support.postgres import postgres_cluster
from tests.support.redis import RedisServer, redis_server

TEMPLATE_DB = "inkwell_template"


def test_settings(database_url: str, **overrides: Any) -> Settings:
    # Cheap Argon2id parameters: the algorithm is the same, the suite is not slowed by its cost.
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "secret_key": "test-secret-that-is-long-enough-for-hs256-0123456789",
        "argon2_time_cost": 1,
        "argon2_memory_cost_kib": 1024,
        "argon2_parallelism": 1,
        "db_pool_size": 20,
        "db_max_overflow": 10,
        "database_pooler": pooler_of(database_url),
        # The suite signs up many users from one address; tests of the limits turn them on.
        "rate_limits_enabled": False,
    } | overrides
    return Settings(**values)


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test, when imported


class PostgresServer:
    """Creates databases on the test server: the template once, then copies of it."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def url(self, database: str) -> str:
        return make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)

    def _execute(self, sql: str) -> None:
        import asyncpg

        async def run() -> None:
            url = make_url(self.admin_url)
            connection = await asyncpg.connect(
                host=url.host, port=url.port, user=url.username, password=url.password, database=url.database
            )
            try:
                await connection.execute(sql)
            finally:
                await connection.close()

        # Its own thread and loop, so sync and async fixtures alike may create databases.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, run()).result()

    def create_template(self) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
        self._execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
        upgrade(self.url(TEMPLATE_DB))

    def create_database(self, prefix: str = "inkwell_test") -> str:
        """A new database with the migrated schema, copied from the template in milliseconds."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    existing = os.environ.get("INKWELL_TEST_DATABASE_URL")
    if existing:
        server = PostgresServer(existing)
        server.create_template()
        yield server
        return
    with postgres_cluster() as cluster:
        server = PostgresServer(cluster.url("postgres"))
        server.create_template()
        yield server


@pytest.fixture(scope="session")
def database_url(postgres: PostgresServer) -> str:
    return postgres.create_database()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return test_settings(database_url)


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One connection per test, inside a transaction that is rolled back at the end."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        # The count of all articles is kept by a trigger deferred to the commit (migration 0002),
        # and the test's transaction never commits: its trigger fires at each statement instead.
        await connection.exec_driver_sql("SET CONSTRAINTS ALL IMMEDIATE")
        try:
            yield connection
        finally:
            await transaction.rollback()


@pytest.fixture
def sessionmaker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    # The savepoint recipe: each session's commit() releases a SAVEPOINT, the outer transaction stays.
    return async_sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False, autoflush=False
    )


@pytest.fixture
async def db(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session for arranging and checking data directly, joined to the test's transaction."""
    async with sessionmaker() as session:
        yield session


def on_test_transaction(app: Any, sessionmaker: async_sessionmaker[AsyncSession]) -> Any:
    """Points the app's units of work, the read-only ones of GET requests too, at the test's
    transaction; their commit hooks (the cache's) stay as the app wired them."""
    app.state.database.use_sessions(sessionmaker)
    return app


@pytest.fixture
def app(settings: Settings, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> Any:
    return on_test_transaction(create_app(settings, engine=engine), sessionmaker)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as client:
        yield client


@pytest.fixture
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every SQL statement sent while the test runs, in order."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


@pytest.fixture
async def committing_client(postgres: PostgresServer) -> AsyncIterator[httpx.AsyncClient]:
    """The app on its own fresh database with real commits and a real pool, for concurrency tests."""
    url = postgres.create_database("inkwell_live")
    settings = test_settings(url)
    app = create_app(settings)
    try:
        async with asgi_client(app) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client
    finally:
        await app.state.engine.dispose()
        postgres.drop_database(url)


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[Kube]:
    """One Kubernetes cluster for the whole session, shared by tests/k8s and tests/ops: a private
    KWOK cluster, or the one INKWELL_E2E_KUBECONFIG names."""
    with cluster() as kube:
        yield kube


@pytest.fixture(scope="module")
def kube(kube_cluster: Kube) -> Iterator[Kube]:
    """A fresh namespace per test module, deleted afterwards, so the tests can share a cluster."""
    namespace = f"inkwell-e2e-{uuid.uuid4().hex[:8]}"
    kube_cluster.run("kubectl", "create", "namespace", namespace)
    try:
        yield Kube(kubeconfig=kube_cluster.kubeconfig, bin_dir=kube_cluster.bin_dir, namespace=namespace)
    finally:
        kube_cluster.run("kubectl", "delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    """A Redis of the test's own, which it may stop and start again (modules that only read and
    write through it share one, with a module-scoped fixture of the same name)."""
    with redis_server() as server:
        yield server
