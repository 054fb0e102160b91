"""Favouriting: idempotent on and off, counted once per reader, and seen differently by each viewer."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.models import Article, Favorite
from tests.factories import Account, create_article, create_user, favorite

pytestmark = pytest.mark.anyio


async def stored_favorites(db: AsyncSession, slug: str) -> tuple[int, int]:
    """(rows in favorites, the article's favorites_count) for one article."""
    rows = (
        await db.execute(
            select(func.count())
            .select_from(Favorite)
            .join(Article, Article.id == Favorite.article_id)
            .where(Article.slug == slug)
        )
    ).scalar_one()
    counted = (await db.execute(select(Article.favorites_count).where(Article.slug == slug))).scalar_one()
    return rows, counted


async def unfavorite(client: httpx.AsyncClient, account: Account, slug: str) -> httpx.Response:
    return await client.delete(f"/api/articles/{slug}/favorite", headers=account.headers)


async def test_favorite_marks_the_article_and_counts_the_reader(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    author = await create_user(client)
    fan = await create_user(client)
    created = await create_article(client, author, body="the body")
    article = await favorite(client, fan, created["slug"])
    assert article["favorited"] is True
    assert article["favoritesCount"] == 1
    assert article["body"] == "the body"
    assert article["slug"] == created["slug"]
    assert await stored_favorites(db, created["slug"]) == (1, 1)


async def test_favoriting_twice_counts_once(client: httpx.AsyncClient, db: AsyncSession) -> None:
    author = await create_user(client)
    fan = await create_user(client)
    created = await create_article(client, author)
    await favorite(client, fan, created["slug"])
    again = await favorite(client, fan, created["slug"])
    assert (again["favorited"], again["favoritesCount"]) == (True, 1)
    assert await stored_favorites(db, created["slug"]) == (1, 1)


async def test_unfavoriting_twice_uncounts_once(client: httpx.AsyncClient, db: AsyncSession) -> None:
    author = await create_user(client)
    fan = await create_user(client)
    other = await create_user(client)
    created = await create_article(client, author)
    await favorite(client, fan, created["slug"])
    await favorite(client, other, created["slug"])
    for _ in range(2):
        response = await unfavorite(client, fan, created["slug"])
        assert response.status_code == 200, response.text
        article = response.json()["article"]
        assert (article["favorited"], article["favoritesCount"]) == (False, 1)
    assert await stored_favorites(db, created["slug"]) == (1, 1)


async def test_unfavoriting_an_article_never_favorited_keeps_the_count_at_zero(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    author = await create_user(client)
    reader = await create_user(client)
    created = await create_article(client, author)
    response = await unfavorite(client, reader, created["slug"])
    assert response.status_code == 200
    assert (response.json()["article"]["favorited"], response.json()["article"]["favoritesCount"]) == (
        False,
        0,
    )
    assert await stored_favorites(db, created["slug"]) == (0, 0)


async def test_favorites_count_is_shared_and_favorited_is_per_viewer(client: httpx.AsyncClient) -> None:
    author = await create_user(client)
    fans = [await create_user(client) for _ in range(3)]
    bystander = await create_user(client)
    created = await create_article(client, author)
    for fan in fans:
        await favorite(client, fan, created["slug"])
    url = f"/api/articles/{created['slug']}"
    for viewer, expected in [(fans[0], True), (fans[2], True), (bystander, False), (author, False)]:
        article = (await client.get(url, headers=viewer.headers)).json()["article"]
        assert (article["favorited"], article["favoritesCount"]) == (expected, 3)
        [listed] = (await client.get("/api/articles", headers=viewer.headers)).json()["articles"]
        assert (listed["favorited"], listed["favoritesCount"]) == (expected, 3)
    anonymous = (await client.get(url)).json()["article"]
    assert (anonymous["favorited"], anonymous["favoritesCount"]) == (False, 3)


async def test_favorited_filter_lists_what_that_user_favorited_newest_first(
    client: httpx.AsyncClient,
) -> None:
    author = await create_user(client)
    fan = await create_user(client, username="fan")
    viewer = await create_user(client)
    articles = [await create_article(client, author) for _ in range(4)]
    await favorite(client, fan, articles[2]["slug"])
    await favorite(client, fan, articles[0]["slug"])
    await favorite(client, viewer, articles[1]["slug"])
    # Seen by someone else, the filter still follows the fan's favourites; `favorited` is the viewer's own.
    body = (await client.get("/api/articles?favorited=fan", headers=viewer.headers)).json()
    assert body["articlesCount"] == 2
    assert [a["slug"] for a in body["articles"]] == [articles[2]["slug"], articles[0]["slug"]]
    assert [a["favorited"] for a in body["articles"]] == [False, False]
    unfavorited = await unfavorite(client, fan, articles[2]["slug"])
    assert unfavorited.status_code == 200
    body = (await client.get("/api/articles?favorited=fan")).json()
    assert ([a["slug"] for a in body["articles"]], body["articlesCount"]) == ([articles[0]["slug"]], 1)


async def test_a_viewer_role_may_favorite(client: httpx.AsyncClient, db: AsyncSession) -> None:
    author = await create_user(client)
    reader = await create_user(client, role="viewer", db=db)
    created = await create_article(client, author)
    article = await favorite(client, reader, created["slug"])
    assert (article["favorited"], article["favoritesCount"]) == (True, 1)


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_favorite_of_an_unknown_slug_is_404_article(client: httpx.AsyncClient, method: str) -> None:
    reader = await create_user(client)
    response = await client.request(method, "/api/articles/no-such-article/favorite", headers=reader.headers)
    assert response.status_code == 404
    assert response.json() == {"errors": {"article": ["not found"]}}


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_favorite_refuses_anonymous_readers_with_401(
    client: httpx.AsyncClient, db: AsyncSession, method: str
) -> None:
    author = await create_user(client)
    fan = await create_user(client)
    created = await create_article(client, author)
    await favorite(client, fan, created["slug"])
    response = await client.request(method, f"/api/articles/{created['slug']}/favorite")
    assert response.status_code == 401
    assert response.json() == {"errors": {"token": ["is missing"]}}
    assert await stored_favorites(db, created["slug"]) == (1, 1)


async def test_deleting_a_favorited_article_removes_its_favorites(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    author = await create_user(client)
    fan = await create_user(client, username="fan")
    created = await create_article(client, author)
    await favorite(client, fan, created["slug"])
    assert (
        await client.delete(f"/api/articles/{created['slug']}", headers=author.headers)
    ).status_code == 204
    assert (await db.execute(select(func.count()).select_from(Favorite))).scalar_one() == 0
    assert (await client.get("/api/articles?favorited=fan")).json() == {"articles": [], "articlesCount": 0}
