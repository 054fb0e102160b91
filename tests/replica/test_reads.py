"""Reads on a real PostgreSQL 15 streaming replica (tests/replica/conftest.py): on the replica once
it has replayed what they must see, on the primary for a reader's own writes, for a cached scope's
recent write, with the replica lagging past the limit or down; and back when it recovers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from service.config import Settings
from service.main import create_app
from service.replica import Replica
from tests.conftest import test_settings
from tests.factories import create_article, create_user
from tests.support.asgi import asgi_client
from tests.support.redis import RedisServer, redis_server
from tests.support.replica import ReplicatedDatabase, StreamingReplica

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def replica_settings(database: ReplicatedDatabase, **overrides: Any) -> Settings:
    options: dict[str, Any] = {
        "database_read_url": database.replica_url,
        "db_replica_check_seconds": 0.05,
        # Long enough that a paused replay stays within it for the test, unless a test says less.
        "db_read_max_lag_seconds": 60,
        "cache_enabled": False,
    }
    return test_settings(database.primary_url, **(options | overrides))


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (the replica's checks stop with it), as a pod runs it."""
    app = create_app(settings)
    async with app.router.lifespan_context(app), asgi_client(app) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


def router(client: httpx.AsyncClient) -> Replica:
    replica = client.app.state.database.replica  # type: ignore[attr-defined]
    assert replica is not None
    return replica  # type: ignore[no-any-return]


async def until(condition: Callable[[], Any], *, what: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not await _holds(condition):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def _holds(condition: Callable[[], Any]) -> bool:
    result = condition()
    if asyncio.iscoroutine(result):
        result = await result
    return bool(result)


async def serving_reads(client: httpx.AsyncClient) -> None:
    """Until this app's router has found the replica well (its first check runs on the first read)."""
    await router(client).check()
    await until(lambda: router(client).position is not None, what="the replica to serve reads")


def reads() -> dict[tuple[str, str], float]:
    return {
        (database, reason): REGISTRY.get_sample_value(
            "inkwell_db_reads_total", {"database": database, "reason": reason}
        )
        or 0.0
        for database, reason in (
            ("replica", "replayed"),
            ("primary", "own_write"),
            ("primary", "cache_fill"),
            ("primary", "lagging"),
            ("primary", "unavailable"),
        )
    }


def since(before: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    return {route: count - before[route] for route, count in reads().items() if count != before[route]}


async def caught_up(replica: StreamingReplica, *clients: httpx.AsyncClient) -> None:
    replica.wait_caught_up()
    for client in clients:
        await router(client).check()


async def test_a_writer_reads_its_writes_through_every_pod_while_the_replica_lags(
    replicated: ReplicatedDatabase, replica: StreamingReplica, redis: RedisServer
) -> None:
    # Two pods sharing Redis, where each user's last write is kept.
    settings = replica_settings(replicated, redis_url=redis.url)
    async with serving(settings) as one, serving(settings) as two:
        reader = await create_user(one)
        await caught_up(replica, one, two)
        await serving_reads(one)
        await serving_reads(two)
        replica.pause_replay()

        author = await create_user(one)  # registered through one pod, unknown to the replica
        before = reads()
        account = await two.get("/api/user", headers=author.headers)  # signed in through the other
        assert account.status_code == 200, account.text
        assert since(before) == {("primary", "own_write"): 1}

        article = await create_article(two, author)
        path = f"/api/articles/{article['slug']}"
        before = reads()
        assert (await one.get(path, headers=author.headers)).status_code == 200
        # Anyone else reads the replica, which has not replayed it (60 s of lag are allowed here).
        assert (await one.get(path)).status_code == 404
        assert (await two.get(path, headers=reader.headers)).status_code == 404
        assert since(before) == {("primary", "own_write"): 1, ("replica", "replayed"): 2}

        replica.resume_replay()
        await caught_up(replica, one, two)
        before = reads()
        for client in (one, two):
            assert (await client.get(path)).status_code == 200
            assert (await client.get(path, headers=author.headers)).status_code == 200
        assert since(before) == {("replica", "replayed"): 4}


async def test_a_replica_past_the_lag_limit_serves_no_read_until_it_catches_up(
    replicated: ReplicatedDatabase, replica: StreamingReplica
) -> None:
    async with serving(replica_settings(replicated, db_read_max_lag_seconds=0.5)) as client:
        await serving_reads(client)
        replica.pause_replay()
        author = await create_user(client)
        article = await create_article(client, author)
        path = f"/api/articles/{article['slug']}"

        def lag() -> float:
            return REGISTRY.get_sample_value("inkwell_db_replica_lag_seconds") or 0.0

        assert REGISTRY.get_sample_value("inkwell_db_replica_lag_limit_seconds") == 0.5  # the alert's base
        await until(lambda: lag() > 0.5, what="the lag to pass the limit")
        assert REGISTRY.get_sample_value("inkwell_db_replica_up") == 0
        assert (REGISTRY.get_sample_value("inkwell_db_replica_lag_bytes") or 0) > 0
        before = reads()
        # Anonymous, so no write of its own: the primary only because the replica is too far behind.
        assert (await client.get(path)).status_code == 200
        assert since(before) == {("primary", "lagging"): 1}

        replica.resume_replay()
        replica.wait_caught_up()
        await until(lambda: lag() < 0.5, what="the lag to fall back under the limit")
        await until(lambda: REGISTRY.get_sample_value("inkwell_db_replica_up") == 1, what="the replica up")
        before = reads()
        assert (await client.get(path)).status_code == 200
        assert since(before) == {("replica", "replayed"): 1}


async def test_a_replica_that_goes_down_costs_no_read_and_serves_again_when_back(
    replicated: ReplicatedDatabase, replica: StreamingReplica
) -> None:
    async with serving(replica_settings(replicated, db_replica_check_seconds=0.2)) as client:
        author = await create_user(client)
        article = await create_article(client, author)
        path = f"/api/articles/{article['slug']}"
        await caught_up(replica, client)
        await serving_reads(client)
        assert (await client.get(path)).status_code == 200  # a pooled connection to the replica
        replica.stop()
        try:
            before = reads()
            # The first read finds the pooled connection closed and the replica refusing a new one;
            # it and every read after it run on the primary.
            for _ in range(20):
                response = await client.get(path)
                assert response.status_code == 200, response.text
            counted = since(before)
            # The first, sent to the replica, went on on the primary: counted on both.
            assert counted.pop(("replica", "replayed"), 0) <= 1
            assert counted == {("primary", "unavailable"): 20}
            assert REGISTRY.get_sample_value("inkwell_db_replica_up") == 0
        finally:
            replica.start()
        await caught_up(replica, client)
        await until(lambda: router(client).position is not None, what="the replica back")
        before = reads()
        assert (await client.get(path)).status_code == 200
        assert since(before) == {("replica", "replayed"): 1}


async def test_the_cache_never_keeps_what_a_lagging_replica_returned_after_a_write(
    replicated: ReplicatedDatabase, replica: StreamingReplica
) -> None:
    # The in-process cache (test environment, one process) has the same generations as Redis's.
    async with serving(replica_settings(replicated, cache_enabled=True)) as client:
        author = await create_user(client)
        article = await create_article(client, author, body="the first body")
        other = await create_article(client, author, body="another article")
        path = f"/api/articles/{article['slug']}"
        await caught_up(replica, client)
        await serving_reads(client)
        assert (await client.get(path)).json()["article"]["body"] == "the first body"  # cached

        replica.pause_replay()
        edited = await client.put(path, json={"article": {"body": "the second body"}}, headers=author.headers)
        assert edited.status_code == 200, edited.text
        before = reads()
        # The edit gave the article's scope a new generation carrying its commit's position: the
        # miss is built on the primary, never from the replica's older row, and cached so.
        for _ in range(3):
            assert (await client.get(path)).json()["article"]["body"] == "the second body"
        assert since(before) == {("primary", "cache_fill"): 1}
        # An article the edit did not touch is still built on the replica.
        before = reads()
        assert (await client.get(f"/api/articles/{other['slug']}")).status_code == 200
        assert since(before) == {("replica", "replayed"): 1}

        replica.resume_replay()
        await caught_up(replica, client)
        assert (await client.get(path)).json()["article"]["body"] == "the second body"


async def test_with_redis_gone_writes_wait_and_signed_in_readers_read_the_primary(
    replicated: ReplicatedDatabase, replica: StreamingReplica, redis: RedisServer
) -> None:
    # The cache off, so the write log alone needs Redis here.
    async with serving(replica_settings(replicated, redis_url=redis.url)) as client:
        author = await create_user(client)
        article = await create_article(client, author)
        path = f"/api/articles/{article['slug']}"
        await caught_up(replica, client)
        await serving_reads(client)
        redis.stop()
        try:
            # Committed without its record, the writer's next read could miss it on the replica.
            refused = await client.post(
                f"{path}/comments", json={"comment": {"body": "hello"}}, headers=author.headers
            )
            assert refused.status_code == 503, refused.text
            assert refused.json() == {
                "errors": {"redis": ["is unavailable, so writes wait until it is back; retry later"]}
            }
            assert refused.headers["retry-after"] == "1"
            comments = await client.get(f"{path}/comments", headers=author.headers)
            assert comments.json()["comments"] == []  # nothing was written
            before = reads()
            # Whether they wrote what the replica lacks cannot be known: the primary knows.
            assert (await client.get(path, headers=author.headers)).status_code == 200
            assert (await client.get(path)).status_code == 200  # anonymous: still the replica
            assert since(before) == {("primary", "own_write"): 1, ("replica", "replayed"): 1}
        finally:
            redis.start()
        created = await client.post(
            f"{path}/comments", json={"comment": {"body": "hello"}}, headers=author.headers
        )
        assert created.status_code == 201, created.text
        listed = await client.get(f"{path}/comments", headers=author.headers)
        assert [comment["body"] for comment in listed.json()["comments"]] == ["hello"]


async def test_a_live_subscription_to_an_article_the_replica_has_not_replayed_is_not_refused(
    replicated: ReplicatedDatabase, replica: StreamingReplica
) -> None:
    """A REST reader of a just-published article may see 404 from a lagging replica and reload; a
    socket refused its topic would not ask again, so the hub's check asks the primary after a miss."""
    async with serving(replica_settings(replicated)) as client:
        author = await create_user(client)
        await caught_up(replica, client)
        await serving_reads(client)
        replica.pause_replay()
        article = await create_article(client, author)
        assert (await client.get(f"/api/articles/{article['slug']}")).status_code == 404  # lagging
        directory = client.app.state.live.directory  # type: ignore[attr-defined]
        assert await directory.article_exists(article["slug"])  # an anonymous socket's subscribe
        author_id, _expires = await directory.signed_in(author.token)
        assert await directory.article_exists(article["slug"], reader=author_id)  # the author's
        assert not await directory.article_exists("no-such-article")
