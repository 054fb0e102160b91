"""More service processes than the database has connections for: four `inkwell serve` processes, each
with the chart's pool of 10 plus 10 overflow (80 connections), in front of a PostgreSQL that takes
20. Through PgBouncer a load of signed-in reads and writes gets no error and counts every write
once; the same load straight to PostgreSQL is refused connections, which is why PgBouncer is there."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from launch.pgbouncer import Pooling
from tests.support.pgbouncer import pgbouncer
from tests.support.postgres import PostgresCluster, postgres_cluster
from tests.support.server import ServerProcess, migrate, running_server, server_env

pytestmark = pytest.mark.slow

MAX_CONNECTIONS = 20
PROCESSES, POOL_SIZE, MAX_OVERFLOW = 4, 10, 10
# Well under the server's limit: room for this test's own checks and an operator's psql.
SERVER_CONNECTIONS = 8
USERS, FAVOURITED, CREATED, LISTS = 40, 10, 2, 5
TOO_MANY = "sorry, too many clients already"
# Enough requests in flight that every process wants its whole pool and overflow at once.
IN_FLIGHT = 2 * PROCESSES * (POOL_SIZE + MAX_OVERFLOW)


@pytest.fixture(scope="module")
def small_postgres() -> Iterator[PostgresCluster]:
    with postgres_cluster(max_connections=MAX_CONNECTIONS) as cluster:
        yield cluster


def refused(cluster: PostgresCluster) -> int:
    """The connections PostgreSQL has refused for want of a slot, from its log."""
    return (cluster.datadir.parent / "postgres.log").read_text(errors="replace").count(TOO_MANY)


def fresh_database(cluster: PostgresCluster, name: str) -> str:
    cluster.psql(f'CREATE DATABASE "{name}"')
    url = cluster.url(name)
    migrate(server_env(url))
    return url


@contextlib.contextmanager
def services(database_url: str, **settings: str) -> Iterator[list[ServerProcess]]:
    """PROCESSES `inkwell serve` processes on `database_url`, with the chart's pool sizes."""
    quiet = {"INKWELL_ACCESS_LOG": "false", "INKWELL_LOG_LEVEL": "WARNING"}
    env = server_env(
        database_url,
        INKWELL_DB_POOL_SIZE=str(POOL_SIZE),
        INKWELL_DB_MAX_OVERFLOW=str(MAX_OVERFLOW),
        # Loose: a request may queue for a connection as long as it takes on a busy machine.
        INKWELL_DB_POOL_TIMEOUT="60",
        # Each process's own in-process cache would not see the others' writes.
        INKWELL_CACHE_ENABLED="false",
        **(quiet | settings),
    )
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(running_server(env, migrate_first=False)) for _ in range(PROCESSES)]


@dataclass
class Outcome:
    statuses: Counter[str] = field(default_factory=Counter)
    tokens: list[str] = field(default_factory=list)
    slugs: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)


async def load(
    servers: list[ServerProcess],
    outcome: Outcome,
    *,
    before_the_rush: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Users and an article each, a few at a time; then all at once: every user favourites
    FAVOURITED articles (each twice, concurrently), writes CREATED articles and lists the articles
    signed in LISTS times, spread over the processes. `before_the_rush` runs between the two."""
    urls = itertools.cycle(server.url for server in servers)
    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:

        async def call(
            method: str, path: str, token: str | None = None, body: object = None
        ) -> httpx.Response:
            headers = {"Authorization": f"Token {token}"} if token else {}
            try:
                response = await client.request(method, next(urls) + path, json=body, headers=headers)
            except httpx.HTTPError as error:
                outcome.statuses[f"{type(error).__name__} on {method} {path}"] += 1
                raise
            outcome.statuses[str(response.status_code)] += 1
            return response

        async def setup(i: int) -> None:
            user = {"username": f"load{i}", "email": f"load{i}@example.org", "password": "pw-load-123456"}
            token = (await call("POST", "/api/users", body={"user": user})).json()["user"]["token"]
            article = {"title": f"Seed {i}", "description": "d", "body": "b", "tagList": ["load"]}
            slug = (await call("POST", "/api/articles", token, {"article": article})).json()["article"][
                "slug"
            ]
            outcome.tokens.append(token)
            outcome.slugs.append(slug)

        for first in range(0, USERS, PROCESSES):
            await asyncio.gather(*(setup(i) for i in range(first, first + PROCESSES)))

        async def favourite(token: str, slug: str) -> None:
            await call("POST", f"/api/articles/{slug}/favorite", token)

        async def create(token: str, n: int) -> None:
            article = {"title": f"Under load {n}", "description": "d", "body": "b", "tagList": ["load"]}
            response = await call("POST", "/api/articles", token, {"article": article})
            if response.status_code == 201:
                outcome.created.append(response.json()["article"]["slug"])

        async def read(token: str) -> None:
            await call("GET", "/api/articles?limit=20", token)

        work = []
        for u, token in enumerate(outcome.tokens):
            for k in range(FAVOURITED):
                slug = outcome.slugs[(u + k) % USERS]
                work += [favourite(token, slug), favourite(token, slug)]
            work += [create(token, u * CREATED + n) for n in range(CREATED)]
            work += [read(token) for _ in range(LISTS)]
        if before_the_rush is not None:
            await before_the_rush()
        await asyncio.gather(*work, return_exceptions=True)


def listing(server: ServerProcess, **filters: str) -> tuple[int, list[str]]:
    """articlesCount of the list with `filters`, and the slugs of all its pages."""
    slugs: list[str] = []
    while True:
        params = {**filters, "limit": "100", "offset": str(len(slugs))}
        page = httpx.get(f"{server.url}/api/articles", params=params, timeout=30).json()
        slugs += [article["slug"] for article in page["articles"]]
        if not page["articles"] or len(slugs) >= page["articlesCount"]:
            return int(page["articlesCount"]), slugs


def test_through_pgbouncer_four_processes_of_twenty_connections_serve_the_load_without_an_error(
    small_postgres: PostgresCluster,
) -> None:
    url = fresh_database(small_postgres, "scale_out_pooled")
    refused_before = refused(small_postgres)
    outcome = Outcome()
    with (
        pgbouncer(
            url, Pooling(pool_size=SERVER_CONNECTIONS, max_client_conn=500, query_wait_timeout=120)
        ) as bouncer,
        services(bouncer.through(url), INKWELL_DATABASE_POOLER="pgbouncer") as servers,
    ):
        asyncio.run(load(servers, outcome))
        # Asked once the load is over: psql run from this process while the load ran had one of
        # its thousand HTTP requests reset now and then, with PgBouncer or without.
        pool = next(p for p in bouncer.show("POOLS") if p["database"] == "scale_out_pooled")
        stats = next(s for s in bouncer.show("STATS") if s["database"] == "scale_out_pooled")
        listed_count, listed = listing(servers[0], tag="load")
        logs = [server.output()[-2000:] for server in servers]

    assert set(outcome.statuses) <= {"200", "201"}, (outcome.statuses, logs)
    assert outcome.statuses["201"] == 2 * USERS + USERS * CREATED
    # Each process keeps its pool's 10 connections to PgBouncer: more clients than PostgreSQL
    # takes, on no more server connections than PgBouncer's pool, transactions queueing for them.
    clients = int(pool["cl_active"]) + int(pool["cl_waiting"])
    servers_open = sum(int(pool[k]) for k in ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"))
    assert clients >= PROCESSES * POOL_SIZE > MAX_CONNECTIONS, pool
    assert 0 < servers_open <= SERVER_CONNECTIONS, pool
    assert int(stats["total_wait_time"]) > 0, stats
    assert refused(small_postgres) == refused_before

    def scalar(sql: str) -> int:
        return int(small_postgres.psql(sql, database="scale_out_pooled"))

    # Every favourite once, however many times it was asked for, and the counters agree.
    assert scalar("SELECT count(*) FROM favorites") == USERS * FAVOURITED
    assert scalar(f"SELECT count(*) FROM articles WHERE favorites_count <> {FAVOURITED}") == CREATED * USERS
    assert scalar("SELECT sum(favorites_count) FROM users") == USERS * FAVOURITED
    # Every article created under load is listed, and articlesCount is the rows.
    rows = scalar("SELECT count(*) FROM articles")
    assert rows == USERS + USERS * CREATED
    assert listed_count == rows
    assert scalar("SELECT articles_count FROM tags WHERE name = 'load'") == rows
    assert set(outcome.created) <= set(listed)
    assert len(set(listed)) == rows


@contextlib.asynccontextmanager
async def all_slots_but_one(cluster: PostgresCluster) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """A step that takes every connection PostgreSQL has left but one, held until the block ends:
    whatever the pools opened during the setup, the rush needs more than the server has, however
    the machine's load spreads the requests in time (left to chance, a busy machine sometimes
    served the whole rush on the connections the setup had opened)."""
    import asyncpg

    held: list[asyncpg.Connection] = []

    async def take() -> None:
        url = cluster.url(driver="asyncpg").replace("postgresql+asyncpg", "postgresql")
        while True:
            try:
                held.append(await asyncpg.connect(url))
            except asyncpg.TooManyConnectionsError:
                break
        await held.pop().close()

    try:
        yield take
    finally:
        for connection in held:
            await connection.close()


def test_without_pgbouncer_the_same_load_is_refused_connections(small_postgres: PostgresCluster) -> None:
    url = fresh_database(small_postgres, "scale_out_direct")
    outcome = Outcome()
    refused_before = 0

    async def run(servers: list[ServerProcess]) -> None:
        async def take_and_count() -> None:
            nonlocal refused_before
            await take()
            refused_before = refused(small_postgres)  # the one refusal that found the last slot too

        async with all_slots_but_one(small_postgres) as take:
            await load(servers, outcome, before_the_rush=take_and_count)

    with services(url) as servers:
        asyncio.run(run(servers))

    # Answered as an outage (503 and Retry-After), as a refused connection should be; never a 500.
    assert outcome.statuses["503"] > 0, outcome.statuses
    assert "500" not in outcome.statuses, outcome.statuses
    assert refused(small_postgres) > refused_before
