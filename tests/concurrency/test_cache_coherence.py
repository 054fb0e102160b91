"""The cache stays coherent where requests really overlap: several processes sharing Redis, and a
read that runs while a write is between its invalidation and its commit. Real commits, real pools."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from service.cache import RedisBackend, Slot
from service.main import create_app
from tests.conftest import PostgresServer, test_settings
from tests.factories import create_article, create_user
from tests.support.asgi import asgi_client
from tests.support.redis import RedisServer, redis_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
async def two_processes(
    postgres: PostgresServer, redis: RedisServer
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two instances of the app (as two pods would be) on one database and one Redis."""
    url = postgres.create_database("inkwell_cache")
    settings = test_settings(url, redis_url=redis.url)
    apps = [create_app(settings), create_app(settings)]
    try:
        async with AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(asgi_client(app)) for app in apps]
            for client, app in zip(clients, apps, strict=True):
                client.app = app  # type: ignore[attr-defined]
            yield clients
    finally:
        for app in apps:
            await app.state.cache.close()
            await app.state.engine.dispose()
        postgres.drop_database(url)


async def test_a_write_through_one_process_is_read_at_once_through_the_other(
    two_processes: list[httpx.AsyncClient],
) -> None:
    one, other = two_processes
    author = await create_user(one)
    article = await create_article(one, author)
    path = f"/api/articles/{article['slug']}"
    for _ in range(2):  # cached in Redis by the other process
        assert (await other.get(path)).json()["article"]["body"] == "A body"
    for round_ in range(5):
        body = f"Edit {round_}"
        edited = await one.put(path, json={"article": {"body": body}}, headers=author.headers)
        assert edited.status_code == 200
        assert (await other.get(path)).json()["article"]["body"] == body
        assert (await one.get(path)).json()["article"]["body"] == body


class ReadDuringWrite:
    """A backend that, when a write first invalidates (before its commit), lets a reader in: the
    reader sees the database without the write and caches that under the new generation."""

    def __init__(self, inner: RedisBackend) -> None:
        self.inner = inner
        self.reader: httpx.AsyncClient | None = None
        self.path = ""
        self.raced: list[Any] = []

    async def get(self, scopes: Sequence[str], key: str) -> tuple[Slot, bytes | None]:
        return await self.inner.get(scopes, key)

    async def put(self, slot: Slot, value: bytes) -> None:
        await self.inner.put(slot, value)

    async def invalidate(self, scopes: Iterable[str], lsn: int = 0) -> None:
        await self.inner.invalidate(scopes, lsn)
        if self.reader is not None and not self.raced:
            self.raced.append((await self.reader.get(self.path)).json())

    async def close(self) -> None:
        await self.inner.close()


async def test_a_read_racing_a_commit_is_never_served_after_it(
    two_processes: list[httpx.AsyncClient], redis: RedisServer
) -> None:
    writer, reader = two_processes
    author = await create_user(writer)
    article = await create_article(writer, author)
    path = f"/api/articles/{article['slug']}"
    racing = ReadDuringWrite(RedisBackend(redis.url, ttl=60))
    writer.app.state.cache.backend = racing  # type: ignore[attr-defined]
    racing.reader, racing.path = reader, path

    edited = await writer.put(path, json={"article": {"body": "After"}}, headers=author.headers)
    assert edited.status_code == 200
    # The racing read ran before the commit and saw the old body...
    assert racing.raced[0]["article"]["body"] == "A body"
    # ...and cached it, but under a generation the commit's second invalidation has retired.
    assert (await reader.get(path)).json()["article"]["body"] == "After"
