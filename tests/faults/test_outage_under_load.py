"""Every shape of database outage, met under load by a real `inkwell serve`, answers 503 with
Retry-After: PostgreSQL refusing new sessions while a smart shutdown waits for the old ones
(57P03), a fast shutdown ending every session, the seconds it takes to start again (57P03 once
more), and a restart. Counted over the whole run: no 5xx but 503, no connection closed without a
response, every 503 logged with its reason, and requests served again once the database is back."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import subprocess
import threading
import time
from collections.abc import Iterator

import anyio
import httpx
import pytest

from launch import postgres as pg
from tests.support.pgbouncer import pgbouncer
from tests.support.postgres import PostgresCluster, postgres_cluster
from tests.support.redis import RedisServer
from tests.support.server import ServerProcess, migrate, running_server, server_env

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

DATABASE = "inkwell_outage"
CLIENTS = 12


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    with postgres_cluster() as cluster:
        cluster.psql(f'CREATE DATABASE "{DATABASE}"')
        yield cluster


@pytest.fixture(params=["1-worker", "2-workers", "pgbouncer"])
def server(
    request: pytest.FixtureRequest, cluster: PostgresCluster, redis: RedisServer
) -> Iterator[ServerProcess]:
    # As staging runs it: the cache in Redis, two workers under the supervisor, through PgBouncer.
    direct = server_env(cluster.url(DATABASE), INKWELL_DB_POOL_TIMEOUT="2", INKWELL_REDIS_URL=redis.url)
    migrate(direct)
    with contextlib.ExitStack() as stack:
        env = direct
        if request.param == "pgbouncer":
            bouncer = stack.enter_context(pgbouncer(cluster.url(DATABASE)))
            env = direct | {
                "INKWELL_DATABASE_URL": bouncer.url(DATABASE),
                "INKWELL_DATABASE_POOLER": "pgbouncer",
            }
        workers = 1 if request.param == "1-worker" else 2
        yield stack.enter_context(running_server(env, workers=workers, migrate_first=False))


class Tally:
    """What the load saw: statuses, 503s without Retry-After, and failures that were no response."""

    def __init__(self) -> None:
        self.statuses: collections.Counter[int] = collections.Counter()
        self.without_retry_after = 0
        self.no_response: collections.Counter[str] = collections.Counter()
        self.served_at: list[float] = []
        # Set by the first request served after `back`, once the test has marked the database back.
        self.back: float | None = None
        self.served_again = asyncio.Event()

    def record(self, response: httpx.Response) -> None:
        self.statuses[response.status_code] += 1
        if response.status_code == 503 and not response.headers.get("retry-after"):
            self.without_retry_after += 1
        if response.status_code < 500:
            now = time.monotonic()
            self.served_at.append(now)
            if self.back is not None and now > self.back:
                self.served_again.set()

    def summary(self) -> str:
        return f"statuses {dict(self.statuses)}, no response {dict(self.no_response)}"


async def load(server: ServerProcess, token: str, slug: str, tally: Tally, stop: asyncio.Event) -> None:
    """Signed-in reads and writes (never served from the cache), on one keep-alive connection."""
    signed_in = {"Authorization": f"Token {token}"}
    requests = [
        ("GET", "/api/articles", None),
        ("GET", "/api/user", None),
        ("POST", f"/api/articles/{slug}/favorite", None),
        ("GET", f"/api/articles/{slug}", None),
        ("DELETE", f"/api/articles/{slug}/favorite", None),
        ("POST", f"/api/articles/{slug}/comments", {"comment": {"body": "still here?"}}),
    ]
    async with httpx.AsyncClient(base_url=server.url, timeout=30, headers=signed_in) as client:
        index = 0
        while not stop.is_set():
            method, path, body = requests[index % len(requests)]
            index += 1
            try:
                tally.record(await client.request(method, path, json=body))
            except httpx.TransportError as error:  # the connection ended with no response
                tally.no_response[type(error).__name__] += 1
                await asyncio.sleep(0.01)


def pg_ctl(cluster: PostgresCluster, *args: str) -> None:
    """pg_ctl on the cluster; its exit status is not the point (a smart stop that times out fails)."""
    command = pg.as_owner([str(pg.bindir() / "pg_ctl"), "-D", str(cluster.datadir), *args])
    subprocess.run(command, capture_output=True, check=False, timeout=90)


async def test_a_database_stopping_and_starting_under_load_answers_only_503s_with_retry_after(
    server: ServerProcess, cluster: PostgresCluster
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        user = {"username": "loaded", "email": "loaded@example.org", "password": "pw-12345678"}
        token = (await client.post("/api/users", json={"user": user})).json()["user"]["token"]
        article = {"title": "Under load", "description": "d", "body": "b"}
        created = await client.post(
            "/api/articles", json={"article": article}, headers={"Authorization": f"Token {token}"}
        )
        slug = created.json()["article"]["slug"]

    tally = Tally()
    stop = asyncio.Event()
    clients = [asyncio.create_task(load(server, token, slug, tally, stop)) for _ in range(CLIENTS)]
    try:
        await asyncio.sleep(1)
        # Smart: new sessions are refused (57P03) while it waits for the pool's, and pg_ctl gives up
        # waiting after 3 s, the server still shutting down.
        await anyio.to_thread.run_sync(pg_ctl, cluster, "-m", "smart", "-t", "3", "-w", "stop")
        await anyio.to_thread.run_sync(cluster.stop)  # fast: every session ended
        await asyncio.sleep(1)
        # Started in the background, so the load meets it starting up.
        starting = threading.Thread(target=cluster.start)
        starting.start()
        await anyio.to_thread.run_sync(starting.join)
        await asyncio.sleep(1)
        # A restart (pg_ctl's own would keep the server on this test's pipes: it has no log file).
        await anyio.to_thread.run_sync(cluster.stop)
        await anyio.to_thread.run_sync(cluster.start)
        back = tally.back = time.monotonic()
        # Recovery by itself, however long a busy machine takes (PgBouncer retries a failed server
        # login only every server_login_retry, 15 s by default): served again within a minute.
        with anyio.move_on_after(60):
            await tally.served_again.wait()
        await asyncio.sleep(1)  # and the load goes on meeting the database that is back
    finally:
        stop.set()
        await asyncio.gather(*clients)

    assert tally.statuses[503] > 0, f"the load never met the outage: {tally.summary()}"
    server_errors = {status: n for status, n in tally.statuses.items() if status >= 500 and status != 503}
    assert server_errors == {}, tally.summary()
    assert sum(tally.no_response.values()) == 0, tally.summary()
    assert tally.without_retry_after == 0, tally.summary()
    assert any(served > back for served in tally.served_at), (
        f"nothing served within 60 s of the database being back: {tally.summary()}"
    )
    # Each 503 is logged once, with what caused it (the access line alone says nothing of why).
    assert server.output().count('"event": "answered 503"') == tally.statuses[503]
    assert '"reason": "none given"' not in server.output()
