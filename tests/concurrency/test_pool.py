"""A request holds at most one pooled connection, so a pool smaller than the load queues instead of deadlocking."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text

from service.main import create_app
from tests.conftest import PostgresServer, test_settings
from tests.factories import Account, create_article, create_user
from tests.support.asgi import asgi_client

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

POOL_SIZE = 2


@pytest.fixture
async def tiny_pool_app(postgres: PostgresServer) -> AsyncIterator[FastAPI]:
    url = await anyio.to_thread.run_sync(postgres.create_database, "inkwell_pool")
    # A short timeout: a request waiting for a second connection would fail in seconds, not hang.
    app = create_app(test_settings(url, db_pool_size=POOL_SIZE, db_max_overflow=0, db_pool_timeout=5))
    try:
        yield app
    finally:
        await app.state.engine.dispose()
        await anyio.to_thread.run_sync(postgres.drop_database, url)


async def busy_request(
    client: httpx.AsyncClient, account: Account, slug: str, i: int
) -> list[httpx.Response]:
    """Several statements on one request's session each: auth lookup, writes, then reads of the result."""
    return [
        await client.post(f"/api/articles/{slug}/favorite", headers=account.headers),
        await client.get("/api/articles", headers=account.headers),
        await client.post(
            f"/api/articles/{slug}/comments", json={"comment": {"body": f"busy {i}"}}, headers=account.headers
        ),
    ]


async def test_forty_signed_in_requests_share_a_pool_of_two_without_deadlock(tiny_pool_app: FastAPI) -> None:
    pool = tiny_pool_app.state.engine.sync_engine.pool
    checked_out = 0
    peak = 0

    def on_checkout(*_args: Any) -> None:
        nonlocal checked_out, peak
        checked_out += 1
        peak = max(peak, checked_out)

    def on_checkin(*_args: Any) -> None:
        nonlocal checked_out
        checked_out -= 1

    event.listen(pool, "checkout", on_checkout)
    event.listen(pool, "checkin", on_checkin)

    async with asgi_client(tiny_pool_app) as client:
        author = await create_user(client)
        slug = (await create_article(client, author))["slug"]
        readers = list(await asyncio.gather(*(create_user(client) for _ in range(40))))

        with anyio.fail_after(60):
            results = await asyncio.gather(
                *(busy_request(client, account, slug, i) for i, account in enumerate(readers))
            )

        favourites, listings, comments = zip(*results, strict=True)
        assert [r.status_code for r in favourites] == [200] * 40
        assert [r.status_code for r in listings] == [200] * 40
        assert [r.status_code for r in comments] == [201] * 40
        assert all(r.json()["articles"][0]["favorited"] is True for r in listings)
        article = (await client.get(f"/api/articles/{slug}")).json()["article"]
        assert article["favoritesCount"] == 40
        stored_comments = (await client.get(f"/api/articles/{slug}/comments")).json()["comments"]
        assert sorted(c["body"] for c in stored_comments) == sorted(f"busy {i}" for i in range(40))

    # The requests really contended for the two connections, and every one was given back.
    assert peak == POOL_SIZE
    assert checked_out == 0
    assert pool.checkedout() == 0
    async with tiny_pool_app.state.engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM favorites"))).scalar_one() == 40
