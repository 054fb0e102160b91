"""Here the suite's fixtures lead through PgBouncer in transaction mode, in front of the suite's own
PostgreSQL: `postgres` still creates each database on the server but hands out its URL through
PgBouncer, and the session's database, settings and engine are pooled ones. So the modules of
tests/api and tests/concurrency collected again here (test_api_*.py, test_concurrency_*.py) run
their prepared statements, their read-only units of work (autocommit on PostgreSQL) and their
commits with its hooks through it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from launch.pgbouncer import Pooling
from service.config import Settings
from service.db import create_engine
from tests.conftest import PostgresServer, test_settings
from tests.support.pgbouncer import PgBouncer, pgbouncer

# Fewer server connections than a concurrency test's clients, so that their transactions take turns
# on them; and each transaction, even of a test that runs one client at a time, on another server
# connection than the one before (PgBouncer would give it the last one used): under load that is
# what happens, and what a prepared statement must survive.
POOLING = Pooling(pool_size=5, query_wait_timeout=60, spread=True)


class PooledPostgresServer(PostgresServer):
    """The suite's server, each new database handed out as a URL through PgBouncer."""

    def __init__(self, server: PostgresServer, bouncer: PgBouncer) -> None:
        super().__init__(server.admin_url)
        self.bouncer = bouncer

    def create_database(self, prefix: str = "inkwell_test") -> str:
        url = self.bouncer.through(super().create_database(prefix))
        # Server connections for the spreading to spread over, from the first statement.
        self.bouncer.open_servers(make_url(url).database or "", 3)
        return url


@pytest.fixture(scope="session")
def postgres(postgres: PostgresServer) -> Iterator[PooledPostgresServer]:
    with pgbouncer(postgres.admin_url, POOLING) as bouncer:
        yield PooledPostgresServer(postgres, bouncer)


# The session's database, settings and engine of tests/conftest.py, again: theirs are cached for
# the session by whichever test asked first, perhaps one outside this directory.
@pytest.fixture(scope="session")
def database_url(postgres: PooledPostgresServer) -> str:
    return postgres.create_database("inkwell_pooled")


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    pooled = test_settings(database_url)
    assert pooled.database_pooler == "pgbouncer"
    return pooled


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()
