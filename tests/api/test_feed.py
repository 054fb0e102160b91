"""The feed shows a signed-in reader the articles of the authors they follow, and nothing else."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import Account, create_article, create_user, follow

pytestmark = pytest.mark.anyio


async def get_feed(client: httpx.AsyncClient, reader: Account, query: str = "") -> dict[str, Any]:
    response = await client.get(f"/api/articles/feed{query}", headers=reader.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def slugs(feed: dict[str, Any]) -> list[str]:
    return [article["slug"] for article in feed["articles"]]


async def test_feed_lists_only_followed_authors_newest_first(client: httpx.AsyncClient) -> None:
    reader = await create_user(client)
    jake = await create_user(client, username="jake")
    anna = await create_user(client, username="anna")
    stranger = await create_user(client, username="stranger")
    await follow(client, reader, "jake")
    await follow(client, reader, "anna")
    first = await create_article(client, jake)
    await create_article(client, stranger)
    second = await create_article(client, anna)
    await create_article(client, reader)
    third = await create_article(client, jake)
    feed = await get_feed(client, reader)
    assert slugs(feed) == [third["slug"], second["slug"], first["slug"]]
    assert feed["articlesCount"] == 3
    assert [article["author"]["username"] for article in feed["articles"]] == ["jake", "anna", "jake"]
    assert all(article["author"]["following"] is True for article in feed["articles"])


async def test_feed_items_have_no_body(client: httpx.AsyncClient) -> None:
    reader = await create_user(client)
    jake = await create_user(client, username="jake")
    await follow(client, reader, "jake")
    created = await create_article(client, jake, tags=["t"])
    [item] = (await get_feed(client, reader))["articles"]
    assert "body" not in item
    assert item == {key: value for key, value in created.items() if key != "body"} | {
        "author": created["author"] | {"following": True}
    }


async def test_feed_pages_with_limit_and_offset_and_counts_all_followed_articles(
    client: httpx.AsyncClient,
) -> None:
    reader = await create_user(client)
    jake = await create_user(client, username="jake")
    other = await create_user(client)
    await follow(client, reader, "jake")
    expected = []
    for _ in range(5):
        expected.append((await create_article(client, jake))["slug"])
        await create_article(client, other)
    expected.reverse()
    page = await get_feed(client, reader, "?limit=2")
    assert (slugs(page), page["articlesCount"]) == (expected[:2], 5)
    page = await get_feed(client, reader, "?limit=2&offset=2")
    assert (slugs(page), page["articlesCount"]) == (expected[2:4], 5)
    page = await get_feed(client, reader, "?limit=2&offset=4")
    assert (slugs(page), page["articlesCount"]) == (expected[4:], 5)
    page = await get_feed(client, reader, "?offset=5")
    assert (slugs(page), page["articlesCount"]) == ([], 5)


async def test_feed_is_empty_when_following_nobody(client: httpx.AsyncClient) -> None:
    reader = await create_user(client)
    jake = await create_user(client)
    await create_article(client, jake)
    await create_article(client, reader)
    assert await get_feed(client, reader) == {"articles": [], "articlesCount": 0}


async def test_unfollowing_removes_the_author_from_the_feed(client: httpx.AsyncClient) -> None:
    reader = await create_user(client)
    jake = await create_user(client, username="jake")
    await follow(client, reader, "jake")
    await create_article(client, jake)
    assert (await get_feed(client, reader))["articlesCount"] == 1
    response = await client.delete("/api/profiles/jake/follow", headers=reader.headers)
    assert response.status_code == 200
    assert await get_feed(client, reader) == {"articles": [], "articlesCount": 0}


async def test_feed_is_per_reader(client: httpx.AsyncClient) -> None:
    reader = await create_user(client)
    other_reader = await create_user(client)
    jake = await create_user(client, username="jake")
    anna = await create_user(client, username="anna")
    await follow(client, reader, "jake")
    await follow(client, other_reader, "anna")
    by_jake = await create_article(client, jake)
    by_anna = await create_article(client, anna)
    assert slugs(await get_feed(client, reader)) == [by_jake["slug"]]
    assert slugs(await get_feed(client, other_reader)) == [by_anna["slug"]]


async def test_feed_refuses_anonymous_readers_with_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/articles/feed")
    assert response.status_code == 401
    assert response.json() == {"errors": {"token": ["is missing"]}}


async def test_feed_refuses_an_invalid_token_with_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/articles/feed", headers={"Authorization": "Token not-a-jwt"})
    assert response.status_code == 401
    assert response.json() == {"errors": {"token": ["is invalid or expired"]}}


@pytest.mark.parametrize(
    ("query", "key"), [("limit=0", "limit"), ("limit=101", "limit"), ("offset=-1", "offset")]
)
async def test_feed_out_of_range_paging_is_422_naming_the_parameter(
    client: httpx.AsyncClient, query: str, key: str
) -> None:
    reader = await create_user(client)
    response = await client.get(f"/api/articles/feed?{query}", headers=reader.headers)
    assert response.status_code == 422
    assert list(response.json()["errors"]) == [key]
