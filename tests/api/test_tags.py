"""`GET /api/tags` offers the tags articles carry now, the most used first, for the tag cloud."""

from __future__ import annotations

import httpx
import pytest

from service.articles import repository
from tests.factories import create_article, create_user

pytestmark = pytest.mark.anyio


async def get_tags(client: httpx.AsyncClient) -> list[str]:
    response = await client.get("/api/tags")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body = response.json()
    assert list(body) == ["tags"]
    return list(body["tags"])


async def test_no_articles_means_no_tags(client: httpx.AsyncClient) -> None:
    assert await get_tags(client) == []


async def test_tags_are_listed_most_used_first_each_once(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    anna = await create_user(client)
    # The rarest tag is used first, so neither insertion order nor name order gives the expected one.
    await create_article(client, jake, tags=["aardvark", "zebra"])
    await create_article(client, anna, tags=["zebra", "mango"])
    await create_article(client, jake, tags=["mango", "zebra"])
    await create_article(client, anna, tags=["zebra"])
    assert await get_tags(client) == ["zebra", "mango", "aardvark"]


async def test_tags_can_be_read_anonymously_or_signed_in(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    await create_article(client, jake, tags=["only"])
    response = await client.get("/api/tags", headers=jake.headers)
    assert response.json() == {"tags": ["only"]}
    assert await get_tags(client) == ["only"]


async def test_a_tag_whose_only_article_is_deleted_disappears(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    await create_article(client, jake, tags=["kept", "shared"])
    doomed = await create_article(client, jake, tags=["lonely", "shared"])
    assert sorted(await get_tags(client)) == ["kept", "lonely", "shared"]
    assert (await client.delete(f"/api/articles/{doomed['slug']}", headers=jake.headers)).status_code == 204
    assert sorted(await get_tags(client)) == ["kept", "shared"]


async def test_a_tag_removed_from_its_only_article_disappears(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    article = await create_article(client, jake, tags=["old", "stays"])
    response = await client.put(
        f"/api/articles/{article['slug']}",
        json={"article": {"tagList": ["stays", "new"]}},
        headers=jake.headers,
    )
    assert response.status_code == 200, response.text
    assert sorted(await get_tags(client)) == ["new", "stays"]


async def test_tag_counts_follow_updates(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    first = await create_article(client, jake, tags=["alpha"])
    await create_article(client, jake, tags=["alpha", "beta"])
    await create_article(client, jake, tags=["beta"])
    third = await create_article(client, jake, tags=["beta"])
    assert await get_tags(client) == ["beta", "alpha"]
    for article in (first, third):
        response = await client.put(
            f"/api/articles/{article['slug']}", json={"article": {"tagList": ["alpha"]}}, headers=jake.headers
        )
        assert response.status_code == 200
    assert await get_tags(client) == ["alpha", "beta"]


async def test_a_tag_just_used_is_listed_even_when_the_list_is_capped(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A very large site lists its most used tags and, beside them, those used most recently.
    monkeypatch.setattr(repository, "TAGS_MOST_USED", 2)
    monkeypatch.setattr(repository, "TAGS_RECENTLY_USED", 1)
    jake = await create_user(client)
    for _ in range(3):
        await create_article(client, jake, tags=["first", "second", "third"])
    await create_article(client, jake, tags=["first", "second"])
    # `third`, less used and not the latest, is over the cap.
    assert await get_tags(client) == ["first", "second"]
    await create_article(client, jake, tags=["brand-new"])
    assert await get_tags(client) == ["first", "second", "brand-new"]


async def test_tags_are_listed_from_their_counts_without_reading_article_tags(
    client: httpx.AsyncClient, statements: list[str]
) -> None:
    jake = await create_user(client)
    await create_article(client, jake, tags=["counted"])
    statements.clear()
    assert await get_tags(client) == ["counted"]
    assert statements
    assert not any("article_tags" in statement for statement in statements)
