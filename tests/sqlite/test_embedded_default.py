"""The embedded SQLite database is the default, so the whole API and its migrations must work on it too."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import inspect, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from service.config import Settings
from service.main import create_app
from service.migrate import downgrade, upgrade
from tests.conftest import PostgresServer, test_settings
from tests.factories import create_article, create_user
from tests.support.asgi import asgi_client

pytestmark = [pytest.mark.anyio, pytest.mark.sqlite]

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
TABLES = {"users", "follows", "articles", "tags", "article_tags", "favorites", "comments", "counters"}
PROFILE_KEYS = {"username", "bio", "image", "following"}
LIST_ITEM_KEYS = {
    "slug",
    "title",
    "description",
    "tagList",
    "createdAt",
    "updatedAt",
    "favorited",
    "favoritesCount",
    "author",
}


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def migrate(url: str) -> None:
    # Alembic's env.py runs its own event loop, which cannot nest inside the test's.
    await anyio.to_thread.run_sync(upgrade, url)


async def table_names(url: str) -> set[str]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


@pytest.fixture
async def sqlite_app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    url = sqlite_url(tmp_path / "inkwell.db")
    await migrate(url)
    app = create_app(test_settings(url))
    try:
        yield app
    finally:
        await app.state.engine.dispose()


@pytest.fixture
async def sqlite_client(sqlite_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(sqlite_app) as client:
        yield client


def assert_article_shape(article: dict[str, Any], *, with_body: bool) -> None:
    assert set(article) == LIST_ITEM_KEYS | ({"body"} if with_body else set())
    assert set(article["author"]) == PROFILE_KEYS
    assert TIMESTAMP.match(article["createdAt"])
    assert TIMESTAMP.match(article["updatedAt"])


def test_default_database_is_a_sqlite_file_under_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INKWELL_DATABASE_URL", raising=False)
    url = make_url(Settings(_env_file=None).database_url)  # type: ignore[call-arg]
    assert url.get_backend_name() == "sqlite"
    assert url.get_driver_name() == "aiosqlite"
    assert url.database is not None
    assert Path(url.database).parts[0] == "var"


async def test_default_database_is_created_by_migrating_and_then_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INKWELL_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    url = Settings(_env_file=None).database_url  # type: ignore[call-arg]
    await migrate(url)
    assert (tmp_path / make_url(url).database).is_file()  # type: ignore[operator]
    app = create_app(test_settings(url))
    try:
        async with asgi_client(app) as c:
            await create_user(c, username="jake")
            assert (await c.get("/api/profiles/jake")).json()["profile"]["username"] == "jake"
            assert (await c.get("/readyz")).json() == {"status": "ok"}
    finally:
        await app.state.engine.dispose()


async def test_full_conduit_flow_works_on_sqlite(sqlite_client: httpx.AsyncClient) -> None:
    client = sqlite_client
    registered = await client.post(
        "/api/users", json={"user": {"username": "jake", "email": "jake@jake.jake", "password": "jakejake"}}
    )
    assert registered.status_code == 201
    assert registered.headers["content-type"] == "application/json; charset=utf-8"
    user = registered.json()["user"]
    assert set(user) == {"email", "token", "username", "bio", "image"}
    assert (user["username"], user["email"], user["bio"], user["image"]) == (
        "jake",
        "jake@jake.jake",
        None,
        None,
    )

    login = await client.post(
        "/api/users/login", json={"user": {"email": "jake@jake.jake", "password": "jakejake"}}
    )
    assert login.status_code == 200
    jake = {"Authorization": f"Token {login.json()['user']['token']}"}
    assert (await client.get("/api/user", headers=jake)).json()["user"]["username"] == "jake"
    duplicate = await client.post(
        "/api/users", json={"user": {"username": "jake", "email": "other@jake.jake", "password": "jakejake"}}
    )
    assert (duplicate.status_code, duplicate.json()) == (
        409,
        {"errors": {"username": ["has already been taken"]}},
    )

    created = await client.post(
        "/api/articles",
        json={
            "article": {
                "title": "How to train your dragon",
                "description": "Ever wonder how?",
                "body": "You have to believe",
                "tagList": ["reactjs", "angularjs", "dragons", "reactjs"],
            }
        },
        headers=jake,
    )
    assert created.status_code == 201
    article = created.json()["article"]
    assert_article_shape(article, with_body=True)
    assert article["slug"] == "how-to-train-your-dragon"
    assert article["tagList"] == ["angularjs", "dragons", "reactjs"]
    assert (article["favorited"], article["favoritesCount"]) == (False, 0)
    assert article["author"] == {"username": "jake", "bio": None, "image": None, "following": False}
    slug = article["slug"]

    bob = await create_user(client, username="bob")
    comment = await client.post(
        f"/api/articles/{slug}/comments", json={"comment": {"body": "First!"}}, headers=bob.headers
    )
    assert comment.status_code == 201
    first = comment.json()["comment"]
    assert set(first) == {"id", "createdAt", "updatedAt", "body", "author"}
    assert (first["body"], first["author"]["username"]) == ("First!", "bob")
    assert TIMESTAMP.match(first["createdAt"])
    await client.post(
        f"/api/articles/{slug}/comments", json={"comment": {"body": "Second"}}, headers=bob.headers
    )
    comments = (await client.get(f"/api/articles/{slug}/comments")).json()["comments"]
    assert [c["body"] for c in comments] == ["Second", "First!"]

    favourited = (await client.post(f"/api/articles/{slug}/favorite", headers=bob.headers)).json()["article"]
    assert (favourited["favorited"], favourited["favoritesCount"]) == (True, 1)
    by_bob = (await client.get("/api/articles", params={"favorited": "bob"})).json()
    assert by_bob["articlesCount"] == 1
    assert by_bob["articles"][0]["slug"] == slug

    followed = await client.post("/api/profiles/jake/follow", headers=bob.headers)
    assert followed.json() == {"profile": {"username": "jake", "bio": None, "image": None, "following": True}}
    feed = (await client.get("/api/articles/feed", headers=bob.headers)).json()
    assert feed["articlesCount"] == 1
    assert_article_shape(feed["articles"][0], with_body=False)
    assert feed["articles"][0]["author"]["following"] is True
    assert feed["articles"][0]["favorited"] is True
    assert (await client.get("/api/articles/feed", headers=jake)).json() == {
        "articles": [],
        "articlesCount": 0,
    }
    assert (await client.get("/api/articles", params={"tag": "dragons"})).json()["articlesCount"] == 1
    assert set((await client.get("/api/tags")).json()["tags"]) == {"reactjs", "angularjs", "dragons"}

    updated = await client.put(
        f"/api/articles/{slug}",
        json={"article": {"title": "Did you train your dragon?", "tagList": []}},
        headers=jake,
    )
    assert updated.status_code == 200
    renamed = updated.json()["article"]
    assert (renamed["slug"], renamed["tagList"], renamed["body"]) == (
        "did-you-train-your-dragon",
        [],
        "You have to believe",
    )
    assert renamed["updatedAt"] >= article["updatedAt"]
    assert (await client.get(f"/api/articles/{slug}")).status_code == 404
    slug = renamed["slug"]

    removed = await client.delete(f"/api/articles/{slug}/comments/{first['id']}", headers=bob.headers)
    assert removed.status_code == 204
    assert [c["body"] for c in (await client.get(f"/api/articles/{slug}/comments")).json()["comments"]] == [
        "Second"
    ]
    unfavourited = (await client.delete(f"/api/articles/{slug}/favorite", headers=bob.headers)).json()[
        "article"
    ]
    assert (unfavourited["favorited"], unfavourited["favoritesCount"]) == (False, 0)
    unfollowed = await client.delete("/api/profiles/jake/follow", headers=bob.headers)
    assert unfollowed.json()["profile"]["following"] is False

    assert (await client.delete(f"/api/articles/{slug}", headers=bob.headers)).status_code == 403
    assert (await client.delete(f"/api/articles/{slug}", headers=jake)).status_code == 204
    gone = await client.get(f"/api/articles/{slug}")
    assert (gone.status_code, gone.json()) == (404, {"errors": {"article": ["not found"]}})
    assert (await client.get("/api/articles")).json() == {"articles": [], "articlesCount": 0}


async def test_concurrent_favourites_on_sqlite_are_counted_without_errors(
    sqlite_client: httpx.AsyncClient, sqlite_app: FastAPI
) -> None:
    client = sqlite_client
    author = await create_user(client)
    fans = [await create_user(client) for _ in range(15)]
    slug = (await create_article(client, author, tags=["busy"]))["slug"]

    many = await asyncio.gather(
        *(client.post(f"/api/articles/{slug}/favorite", headers=f.headers) for f in fans)
    )
    same = await asyncio.gather(
        *(client.post(f"/api/articles/{slug}/favorite", headers=fans[0].headers) for _ in range(10))
    )

    assert [r.status_code for r in many + same] == [200] * 25
    assert (await client.get(f"/api/articles/{slug}")).json()["article"]["favoritesCount"] == 15
    async with sqlite_app.state.engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM favorites"))).scalar_one() == 15
        assert (await connection.execute(text("SELECT favorites_count FROM articles"))).scalar_one() == 15


async def test_sqlite_migrations_downgrade_to_base_and_upgrade_again(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "roundtrip.db")
    await migrate(url)
    assert await table_names(url) >= TABLES

    await anyio.to_thread.run_sync(downgrade, url, "base")
    assert await table_names(url) == {"alembic_version"}

    await migrate(url)
    assert await table_names(url) == TABLES | {"alembic_version"}
    await assert_serves(url)


async def test_postgresql_migrations_downgrade_to_base_and_upgrade_again(postgres: PostgresServer) -> None:
    url = await anyio.to_thread.run_sync(postgres.create_database, "inkwell_roundtrip")
    try:
        assert await table_names(url) >= TABLES

        await anyio.to_thread.run_sync(downgrade, url, "base")
        assert await table_names(url) == {"alembic_version"}

        await migrate(url)
        assert await table_names(url) == TABLES | {"alembic_version"}
        await assert_serves(url)
    finally:
        await anyio.to_thread.run_sync(postgres.drop_database, url)


async def assert_serves(url: str) -> None:
    """After a round trip the schema is whole again: a user, an article with tags, a favourite."""
    app = create_app(test_settings(url))
    try:
        async with asgi_client(app) as c:
            author = await create_user(c)
            article = await create_article(c, author, tags=["again"])
            favourited = (
                await c.post(f"/api/articles/{article['slug']}/favorite", headers=author.headers)
            ).json()
            assert (favourited["article"]["tagList"], favourited["article"]["favoritesCount"]) == (
                ["again"],
                1,
            )
    finally:
        await app.state.engine.dispose()
