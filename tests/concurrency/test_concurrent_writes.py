"""Concurrent writes to the same rows must neither fail with 500 nor leave counts and tables out of step."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from service.db import create_engine
from tests.factories import Account, create_article, create_user, unique

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

Scalar = Callable[..., Awaitable[Any]]


@pytest.fixture
async def scalar(committing_client: httpx.AsyncClient) -> AsyncIterator[Scalar]:
    """Reads the committed rows through an engine of its own, never through the app's pool or responses."""
    # The app's settings: through PgBouncer (tests/pgbouncer), with what reaching the database so takes.
    engine = create_engine(committing_client.app.state.settings, null_pool=True)  # type: ignore[attr-defined]

    async def run(sql: str, **params: Any) -> Any:
        async with engine.connect() as connection:
            return (await connection.execute(text(sql), params)).scalar_one()

    yield run
    await engine.dispose()


async def users(client: httpx.AsyncClient, n: int) -> list[Account]:
    return list(await asyncio.gather(*(create_user(client) for _ in range(n))))


async def test_many_users_favouriting_one_article_count_each_once(
    committing_client: httpx.AsyncClient, scalar: Scalar
) -> None:
    client = committing_client
    author, *fans = await users(client, 41)
    article = await create_article(client, author)
    slug = article["slug"]

    responses = await asyncio.gather(
        *(client.post(f"/api/articles/{slug}/favorite", headers=fan.headers) for fan in fans)
    )

    assert [r.status_code for r in responses] == [200] * 40
    assert all(r.json()["article"]["favorited"] is True for r in responses)
    # Each response saw its own favourite and some of the others: counts are 1..40, the largest 40.
    assert max(r.json()["article"]["favoritesCount"] for r in responses) == 40
    assert (await client.get(f"/api/articles/{slug}")).json()["article"]["favoritesCount"] == 40
    assert (
        await scalar(
            "SELECT count(*) FROM favorites f JOIN articles a ON a.id = f.article_id WHERE a.slug = :s",
            s=slug,
        )
        == 40
    )
    assert await scalar("SELECT favorites_count FROM articles WHERE slug = :s", s=slug) == 40


async def test_one_user_favouriting_twenty_times_at_once_counts_once(
    committing_client: httpx.AsyncClient, scalar: Scalar
) -> None:
    client = committing_client
    author, fan = await users(client, 2)
    slug = (await create_article(client, author))["slug"]

    responses = await asyncio.gather(
        *(client.post(f"/api/articles/{slug}/favorite", headers=fan.headers) for _ in range(20))
    )

    assert [r.status_code for r in responses] == [200] * 20
    assert {r.json()["article"]["favoritesCount"] for r in responses} == {1}
    assert await scalar("SELECT count(*) FROM favorites") == 1
    assert await scalar("SELECT favorites_count FROM articles WHERE slug = :s", s=slug) == 1


async def test_many_followers_following_one_user_are_all_stored(
    committing_client: httpx.AsyncClient, scalar: Scalar
) -> None:
    client = committing_client
    celebrity, *followers = await users(client, 31)

    responses = await asyncio.gather(
        *(client.post(f"/api/profiles/{celebrity.username}/follow", headers=f.headers) for f in followers)
    )

    assert [r.status_code for r in responses] == [200] * 30
    assert {(r.json()["profile"]["username"], r.json()["profile"]["following"]) for r in responses} == {
        (celebrity.username, True)
    }
    assert (
        await scalar(
            "SELECT count(*) FROM follows f JOIN users u ON u.id = f.followee_id WHERE u.username = :u",
            u=celebrity.username,
        )
        == 30
    )


async def test_duplicate_follows_at_once_store_one_row(
    committing_client: httpx.AsyncClient, scalar: Scalar
) -> None:
    client = committing_client
    celebrity, follower = await users(client, 2)

    responses = await asyncio.gather(
        *(
            client.post(f"/api/profiles/{celebrity.username}/follow", headers=follower.headers)
            for _ in range(20)
        )
    )

    assert [r.status_code for r in responses] == [200] * 20
    assert all(r.json()["profile"]["following"] is True for r in responses)
    assert await scalar("SELECT count(*) FROM follows") == 1
    profile = await client.get(f"/api/profiles/{celebrity.username}", headers=follower.headers)
    assert profile.json()["profile"]["following"] is True


async def test_many_comments_at_once_on_one_article_are_all_stored(
    committing_client: httpx.AsyncClient, scalar: Scalar
) -> None:
    client = committing_client
    author, *commenters = await users(client, 11)
    slug = (await create_article(client, author))["slug"]
    bodies = [f"comment {i}" for i in range(40)]

    responses = await asyncio.gather(
        *(
            client.post(
                f"/api/articles/{slug}/comments",
                json={"comment": {"body": body}},
                headers=commenters[i % len(commenters)].headers,
            )
            for i, body in enumerate(bodies)
        )
    )

    assert [r.status_code for r in responses] == [201] * 40
    assert sorted(r.json()["comment"]["body"] for r in responses) == sorted(bodies)
    assert len({r.json()["comment"]["id"] for r in responses}) == 40
    listed = (await client.get(f"/api/articles/{slug}/comments")).json()["comments"]
    assert sorted(c["body"] for c in listed) == sorted(bodies)
    assert await scalar("SELECT count(*) FROM comments") == 40


async def test_articles_published_at_once_with_the_same_new_tags_get_them_all_and_each_tag_once(
    committing_client: httpx.AsyncClient, scalar: Scalar
) -> None:
    client = committing_client
    authors = await users(client, 10)
    shared = [unique("shared-"), unique("shared-"), unique("shared-")]
    # Each article is sent the shared tags in its own order, plus one tag only it has.
    tag_lists = [[*random.Random(i).sample(shared, k=3), f"own-{i}"] for i in range(30)]

    responses = await asyncio.gather(
        *(
            client.post(
                "/api/articles",
                json={"article": {"title": f"Tagged {i}", "description": "d", "body": "b", "tagList": tags}},
                headers=authors[i % len(authors)].headers,
            )
            for i, tags in enumerate(tag_lists)
        )
    )

    assert [r.status_code for r in responses] == [201] * 30
    # Returned in alphabetical order, whatever order they were sent in.
    assert [r.json()["article"]["tagList"] for r in responses] == [sorted(tags) for tags in tag_lists]
    for response, tags in zip(responses, tag_lists, strict=True):
        stored = await client.get(f"/api/articles/{response.json()['article']['slug']}")
        assert stored.json()["article"]["tagList"] == sorted(tags)
    assert await scalar("SELECT count(*) FROM tags") == 3 + 30
    assert await scalar("SELECT count(DISTINCT name) FROM tags") == 3 + 30
    assert await scalar("SELECT count(*) FROM article_tags") == 30 * 4
    for name in shared:
        assert (
            await scalar(
                "SELECT count(*) FROM article_tags at JOIN tags t ON t.id = at.tag_id WHERE t.name = :n",
                n=name,
            )
            == 30
        )
        listing = (await client.get("/api/articles", params={"tag": name, "limit": 100})).json()
        assert listing["articlesCount"] == 30
    assert set(shared) <= set((await client.get("/api/tags")).json()["tags"])


async def test_articles_with_the_same_title_published_at_once_get_distinct_slugs(
    committing_client: httpx.AsyncClient, scalar: Scalar
) -> None:
    client = committing_client
    authors = await users(client, 10)

    responses = await asyncio.gather(
        *(
            client.post(
                "/api/articles",
                json={"article": {"title": "Same Title", "description": "d", "body": f"body {i}"}},
                headers=authors[i % len(authors)].headers,
            )
            for i in range(30)
        )
    )

    assert [r.status_code for r in responses] == [201] * 30
    slugs = [r.json()["article"]["slug"] for r in responses]
    assert len(set(slugs)) == 30
    assert slugs.count("same-title") == 1
    assert all(slug == "same-title" or slug.startswith("same-title-") for slug in slugs)
    for i, slug in enumerate(slugs):
        article = (await client.get(f"/api/articles/{slug}")).json()["article"]
        assert (article["title"], article["body"]) == ("Same Title", f"body {i}")
    assert await scalar("SELECT count(*) FROM articles WHERE title = 'Same Title'") == 30
    assert await scalar("SELECT count(DISTINCT slug) FROM articles") == 30


async def test_same_username_registered_at_once_succeeds_exactly_once(
    committing_client: httpx.AsyncClient, scalar: Scalar
) -> None:
    client = committing_client
    responses = await asyncio.gather(
        *(
            client.post(
                "/api/users",
                json={
                    "user": {"username": "racer", "email": f"racer{i}@example.org", "password": "secret-pass"}
                },
            )
            for i in range(30)
        )
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 29
    winner = next(r for r in responses if r.status_code == 201).json()["user"]
    assert winner["username"] == "racer"
    for r in responses:
        if r.status_code == 409:
            assert r.json() == {"errors": {"username": ["has already been taken"]}}
    assert await scalar("SELECT count(*) FROM users WHERE username = 'racer'") == 1
    assert await scalar("SELECT email FROM users WHERE username = 'racer'") == winner["email"]
    login = await client.post(
        "/api/users/login", json={"user": {"email": winner["email"], "password": "secret-pass"}}
    )
    assert login.status_code == 200


async def test_same_email_registered_at_once_succeeds_exactly_once(
    committing_client: httpx.AsyncClient, scalar: Scalar
) -> None:
    client = committing_client
    responses = await asyncio.gather(
        *(
            client.post(
                "/api/users",
                json={
                    "user": {"username": f"twin{i}", "email": "twin@example.org", "password": "secret-pass"}
                },
            )
            for i in range(30)
        )
    )

    assert sorted(r.status_code for r in responses) == [201] + [409] * 29
    for r in responses:
        if r.status_code == 409:
            assert r.json() == {"errors": {"email": ["has already been taken"]}}
    assert await scalar("SELECT count(*) FROM users WHERE email = 'twin@example.org'") == 1
    assert await scalar("SELECT count(*) FROM users") == 1


async def test_interleaved_favourite_and_unfavourite_leave_count_equal_to_rows(
    committing_client: httpx.AsyncClient, scalar: Scalar
) -> None:
    client = committing_client
    author, *fans = await users(client, 11)
    slug = (await create_article(client, author))["slug"]
    rng = random.Random(7)
    # Each fan sends a shuffled mix of favourites and unfavourites; the order they land in is up to the server.
    calls = [(fan, method) for fan in fans for method in ["POST"] * 3 + ["DELETE"] * 3]
    rng.shuffle(calls)

    responses = await asyncio.gather(
        *(
            client.request(method, f"/api/articles/{slug}/favorite", headers=fan.headers)
            for fan, method in calls
        )
    )

    assert [r.status_code for r in responses] == [200] * len(calls)
    rows = await scalar(
        "SELECT count(*) FROM favorites f JOIN articles a ON a.id = f.article_id WHERE a.slug = :s", s=slug
    )
    assert 0 <= rows <= len(fans)
    assert await scalar("SELECT favorites_count FROM articles WHERE slug = :s", s=slug) == rows
    assert (await client.get(f"/api/articles/{slug}")).json()["article"]["favoritesCount"] == rows
    for fan in fans:
        stored = await scalar(
            "SELECT count(*) FROM favorites f JOIN users u ON u.id = f.user_id WHERE u.username = :u",
            u=fan.username,
        )
        seen = (await client.get(f"/api/articles/{slug}", headers=fan.headers)).json()["article"]["favorited"]
        assert seen is (stored == 1)


async def test_one_user_toggling_a_favourite_at_once_ends_with_count_matching_rows(
    committing_client: httpx.AsyncClient, scalar: Scalar
) -> None:
    client = committing_client
    author, fan = await users(client, 2)
    slug = (await create_article(client, author))["slug"]

    responses = await asyncio.gather(
        *(
            client.request(
                "POST" if i % 2 == 0 else "DELETE", f"/api/articles/{slug}/favorite", headers=fan.headers
            )
            for i in range(40)
        )
    )

    assert [r.status_code for r in responses] == [200] * 40
    rows = await scalar("SELECT count(*) FROM favorites")
    assert rows in (0, 1)
    assert await scalar("SELECT favorites_count FROM articles WHERE slug = :s", s=slug) == rows
    article = (await client.get(f"/api/articles/{slug}", headers=fan.headers)).json()["article"]
    assert (article["favorited"], article["favoritesCount"]) == (rows == 1, rows)
