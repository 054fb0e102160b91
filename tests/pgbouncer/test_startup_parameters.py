"""What the service asks for at connection start, PgBouncer takes as it is: PostgreSQL runs the
service's statements and nothing PgBouncer adds before each transaction to make the session agree
(asyncpg's quoted client_encoding once cost a SET per request), and PgBouncer is asked for no
startup parameter it would refuse."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import make_url

from service import dialects
from service.main import create_app
from service.migrate import upgrade
from tests.conftest import test_settings
from tests.factories import create_user
from tests.support.asgi import asgi_client
from tests.support.pgbouncer import pgbouncer
from tests.support.postgres import PostgresCluster, postgres_cluster

pytestmark = pytest.mark.anyio

# The parameters PgBouncer 1.18 keeps per client and sets on the server connection it is given.
TRACKED = {"client_encoding", "datestyle", "timezone", "standard_conforming_strings", "application_name"}


@pytest.fixture
def logged() -> Iterator[PostgresCluster]:
    """A PostgreSQL whose database `inkwell` logs every statement it runs."""
    with postgres_cluster() as cluster:
        cluster.psql('CREATE DATABASE "inkwell"')
        upgrade(cluster.url("inkwell"))
        cluster.psql("ALTER DATABASE inkwell SET log_statement = 'all'")
        yield cluster


def statements(cluster: PostgresCluster) -> list[str]:
    log = (cluster.datadir.parent / "postgres.log").read_text(errors="replace")
    return [line.split("LOG:", 1)[1].strip() for line in log.splitlines() if "LOG:" in line]


async def test_postgresql_runs_the_services_statements_and_no_set_before_them(
    logged: PostgresCluster,
) -> None:
    with pgbouncer(logged.url("inkwell")) as bouncer:
        app = create_app(test_settings(bouncer.url("inkwell"), cache_enabled=False))
        try:
            async with asgi_client(app) as client:
                author = await create_user(client)
                for _ in range(5):
                    assert (await client.get("/api/articles", headers=author.headers)).status_code == 200
        finally:
            await app.state.engine.dispose()
    ran = statements(logged)
    assert any("SELECT articles.id" in line for line in ran)
    assert [line for line in ran if "SET " in line.upper() and "client_encoding" in line.lower()] == []


def test_the_service_asks_pgbouncer_only_for_parameters_it_tracks() -> None:
    url = make_url("postgresql+asyncpg://inkwell@pgbouncer/inkwell")
    options = dialects.POSTGRESQL.engine_options(url, pooler=dialects.Pooler.pgbouncer)
    assert {name.lower() for name in options["connect_args"]["server_settings"]} <= TRACKED
