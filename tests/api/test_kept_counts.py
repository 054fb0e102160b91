"""Every `articlesCount` is exact, read from the counts the triggers keep in the writing
transaction (migration 0002), whatever changed them: publishing, retagging, deleting, favouriting."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bench.scale_data import check_sql
from tests.factories import create_article, create_user, favorite, follow

pytestmark = pytest.mark.anyio


async def listed(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None, **params: str
) -> tuple[int, int]:
    """(articlesCount, how many articles the list really has, read page by page)."""
    path = "/api/articles/feed" if params.pop("feed", None) else "/api/articles"
    first = (await client.get(path, params={**params, "limit": 100}, headers=headers or {})).json()
    return first["articlesCount"], len(first["articles"])


async def test_every_list_counts_exactly_what_it_lists_after_a_mix_of_writes(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    jake, anna, reader = [await create_user(client) for _ in range(3)]
    made = [await create_article(client, jake, tags=["x", "y"]) for _ in range(3)]
    made += [await create_article(client, anna, tags=["y", "z"]) for _ in range(2)]
    await client.put(
        f"/api/articles/{made[0]['slug']}", json={"article": {"tagList": ["z"]}}, headers=jake.headers
    )
    renamed = await client.put(
        f"/api/articles/{made[1]['slug']}", json={"article": {"title": "Renamed"}}, headers=jake.headers
    )
    made[1] = renamed.json()["article"]
    for article in made[:4]:
        await favorite(client, reader, article["slug"])
    await favorite(client, anna, made[0]["slug"])
    await client.delete(f"/api/articles/{made[0]['slug']}/favorite", headers=anna.headers)
    assert (await client.delete(f"/api/articles/{made[2]['slug']}", headers=jake.headers)).status_code == 204
    await follow(client, reader, anna.username)

    assert await listed(client) == (4, 4)
    for params in ({"tag": "x"}, {"tag": "y"}, {"tag": "z"}, {"tag": "none-such"}):
        count, rows = await listed(client, **params)
        assert count == rows, params
    assert await listed(client, tag="z") == (3, 3)
    assert await listed(client, author=jake.username) == (2, 2)
    assert await listed(client, author="nobody-at-all") == (0, 0)
    assert await listed(client, favorited=reader.username) == (3, 3)
    assert await listed(client, favorited=anna.username) == (0, 0)
    assert await listed(client, reader.headers, feed="1") == (2, 2)
    # A combination is counted from the rows, not kept.
    assert await listed(client, tag="y", author=anna.username) == (2, 2)
    assert await listed(client, tag="x", favorited=reader.username) == (1, 1)
    assert (await db.execute(text(check_sql()))).scalars().all() == []
