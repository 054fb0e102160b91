"""The counts the triggers keep stay exact when writers race: publishing with shared tags,
retagging, deleting and favouriting at once, each committed for real (migration 0002)."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bench.scale_data import check_sql
from tests.factories import create_article, create_user

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

TAGS = ["alpha", "beta", "gamma", "delta"]


async def test_racing_writers_leave_every_kept_count_equal_to_a_recount(
    committing_client: httpx.AsyncClient,
) -> None:
    client = committing_client
    rng = random.Random(13)
    authors = [await create_user(client) for _ in range(6)]
    fans = [await create_user(client) for _ in range(6)]
    doomed = [await create_article(client, rng.choice(authors), tags=rng.sample(TAGS, 3)) for _ in range(6)]
    owners = {article["slug"]: article["author"]["username"] for article in doomed}
    by_name = {account.username: account for account in authors}

    def publish() -> object:
        author = rng.choice(authors)
        tags = rng.sample(TAGS, rng.randint(1, 4))
        article = {"title": f"Race {rng.random()}", "description": "d", "body": "b", "tagList": tags}
        return client.post("/api/articles", json={"article": article}, headers=author.headers)

    def retag(slug: str) -> object:
        body = {"article": {"tagList": rng.sample(TAGS, rng.randint(0, 4))}}
        return client.put(f"/api/articles/{slug}", json=body, headers=by_name[owners[slug]].headers)

    writes = [publish() for _ in range(24)]
    writes += [retag(article["slug"]) for article in doomed[:3]]
    writes += [
        client.delete(f"/api/articles/{article['slug']}", headers=by_name[owners[article["slug"]]].headers)
        for article in doomed[3:]
    ]
    writes += [
        client.post(f"/api/articles/{article['slug']}/favorite", headers=fan.headers)
        for article in doomed
        for fan in fans
    ]
    rng.shuffle(writes)
    responses = await asyncio.gather(*writes)  # type: ignore[call-overload]

    statuses = [r.status_code for r in responses]
    # A favourite of an article deleted at the same moment may find it gone (404); nothing fails,
    # and no writer is given up for another (a deadlock would be a 409).
    failed = [(r.request.method, r.request.url.path, r.text) for r in responses if r.status_code >= 400]
    assert set(statuses) <= {200, 201, 204, 404}, failed
    assert statuses.count(201) == 24
    engine = create_async_engine(client.app.state.engine.url, poolclass=NullPool)  # type: ignore[attr-defined]
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text(check_sql()))).scalars().all() == []
            total = (await connection.execute(text("SELECT count(*) FROM articles"))).scalar_one()
    finally:
        await engine.dispose()
    assert (await client.get("/api/articles")).json()["articlesCount"] == total == 24 + 3
    for tag in TAGS:
        listed = (await client.get("/api/articles", params={"tag": tag, "limit": 100})).json()
        assert listed["articlesCount"] == len(listed["articles"])
