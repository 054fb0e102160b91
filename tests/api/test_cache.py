"""Public reads are cached, and every write is visible to the very next read, with either cache
backend: in-process (development, test) and Redis (shared by every process and pod)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import redis as sync_redis
from prometheus_client import REGISTRY

from service import cache as cache_module
from service.cache import LocalBackend, RedisBackend, create_cache
from tests.conftest import test_settings
from tests.factories import create_article, create_comment, create_user, favorite
from tests.support.asgi import asgi_client
from tests.support.redis import RedisServer, redis_server

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(params=["local", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def client(app: Any, backend: str, redis: RedisServer) -> AsyncIterator[httpx.AsyncClient]:
    """The suite's client (savepoint-isolated database) with the backend under test."""
    if backend == "redis":
        # Each test's database is rolled back afterwards; what it cached must go with it.
        sync_redis.Redis.from_url(redis.url).flushall()
        app.state.cache.backend = RedisBackend(redis.url, ttl=60)
    async with asgi_client(app) as client:
        yield client
    await app.state.cache.close()


def lookups(scope: str, result: str) -> float:
    return REGISTRY.get_sample_value("inkwell_cache_lookups_total", {"scope": scope, "result": result}) or 0.0


async def anonymous(client: httpx.AsyncClient, path: str) -> Any:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_backend_follows_the_settings() -> None:
    url = "postgresql+asyncpg://u:p@127.0.0.1/db"
    secret = {"secret_key": "x" * 40}
    assert isinstance(create_cache(test_settings(url)).backend, LocalBackend)
    assert isinstance(
        create_cache(test_settings(url, redis_url="redis://127.0.0.1:1/0")).backend, RedisBackend
    )
    # In-process caches in several pods would serve each other's stale reads: off without Redis.
    assert create_cache(test_settings(url, environment="production", **secret)).backend is None
    assert create_cache(test_settings(url, cache_enabled=False)).backend is None


async def test_a_repeated_anonymous_read_is_a_hit_and_answers_the_same(client: httpx.AsyncClient) -> None:
    author = await create_user(client)
    await create_article(client, author, tags=["cached"])
    misses, hits = lookups("articles", "miss"), lookups("articles", "hit")
    first = await client.get("/api/articles?limit=5")
    second = await client.get("/api/articles?limit=5")
    assert second.content == first.content
    assert (
        second.headers["content-type"] == first.headers["content-type"] == "application/json; charset=utf-8"
    )
    assert lookups("articles", "miss") == misses + 1
    assert lookups("articles", "hit") == hits + 1


async def test_signed_in_reads_are_never_served_from_the_cache(client: httpx.AsyncClient) -> None:
    author = await create_user(client)
    reader = await create_user(client)
    article = await create_article(client, author)
    await anonymous(client, f"/api/articles/{article['slug']}")
    await favorite(client, reader, article["slug"])
    hits = lookups("articles", "hit")
    mine = (await client.get(f"/api/articles/{article['slug']}", headers=reader.headers)).json()["article"]
    assert mine["favorited"] is True
    assert lookups("articles", "hit") == hits


async def test_new_updated_and_deleted_articles_show_at_once_in_lists_articles_and_tags(
    client: httpx.AsyncClient,
) -> None:
    author = await create_user(client)
    tag = f"fresh{author.username}"
    assert tag not in (await anonymous(client, "/api/tags"))["tags"]
    before = await anonymous(client, f"/api/articles?author={author.username}")
    assert before["articlesCount"] == 0

    article = await create_article(client, author, title="First title", tags=[tag])
    assert tag in (await anonymous(client, "/api/tags"))["tags"]
    listed = await anonymous(client, f"/api/articles?author={author.username}")
    assert [a["title"] for a in listed["articles"]] == ["First title"]
    assert (await anonymous(client, f"/api/articles?tag={tag}"))["articlesCount"] == 1
    assert (await anonymous(client, f"/api/articles/{article['slug']}"))["article"]["body"] == "A body"

    updated = await client.put(
        f"/api/articles/{article['slug']}",
        json={"article": {"body": "Edited body", "tagList": []}},
        headers=author.headers,
    )
    assert updated.status_code == 200
    assert (await anonymous(client, f"/api/articles/{article['slug']}"))["article"]["body"] == "Edited body"
    assert (await anonymous(client, f"/api/articles?tag={tag}"))["articlesCount"] == 0
    assert tag not in (await anonymous(client, "/api/tags"))["tags"]

    assert (
        await client.delete(f"/api/articles/{article['slug']}", headers=author.headers)
    ).status_code == 204
    assert (await client.get(f"/api/articles/{article['slug']}")).status_code == 404
    assert (await anonymous(client, f"/api/articles?author={author.username}"))["articlesCount"] == 0


async def test_a_favourite_changes_the_count_anonymous_readers_see_at_once(client: httpx.AsyncClient) -> None:
    author = await create_user(client)
    fan = await create_user(client)
    article = await create_article(client, author)
    path = f"/api/articles/{article['slug']}"
    assert (await anonymous(client, path))["article"]["favoritesCount"] == 0
    assert (await anonymous(client, f"/api/articles?favorited={fan.username}"))["articlesCount"] == 0
    await favorite(client, fan, article["slug"])
    assert (await anonymous(client, path))["article"]["favoritesCount"] == 1
    assert (await anonymous(client, f"/api/articles?favorited={fan.username}"))["articlesCount"] == 1
    assert (await client.delete(f"{path}/favorite", headers=fan.headers)).status_code == 200
    assert (await anonymous(client, path))["article"]["favoritesCount"] == 0


async def test_comments_added_and_deleted_show_at_once(client: httpx.AsyncClient) -> None:
    author = await create_user(client)
    article = await create_article(client, author)
    path = f"/api/articles/{article['slug']}/comments"
    assert (await anonymous(client, path))["comments"] == []
    comment = await create_comment(client, author, article["slug"], body="First!")
    assert [c["body"] for c in (await anonymous(client, path))["comments"]] == ["First!"]
    deleted = await client.delete(f"{path}/{comment['id']}", headers=author.headers)
    assert deleted.status_code == 204
    assert (await anonymous(client, path))["comments"] == []


async def test_an_author_renaming_themselves_shows_at_once_on_their_articles_and_comments(
    client: httpx.AsyncClient,
) -> None:
    author = await create_user(client)
    article = await create_article(client, author)
    await create_comment(client, author, article["slug"])
    paths = [
        f"/api/articles/{article['slug']}",
        "/api/articles?limit=100",
        f"/api/articles/{article['slug']}/comments",
    ]
    for path in paths:
        await anonymous(client, path)
    renamed = f"{author.username}x"
    changed = await client.put(
        "/api/user", json={"user": {"username": renamed, "bio": "New bio"}}, headers=author.headers
    )
    assert changed.status_code == 200, changed.text
    assert (await anonymous(client, paths[0]))["article"]["author"] == {
        "username": renamed,
        "bio": "New bio",
        "image": None,
        "following": False,
    }
    listed = (await anonymous(client, paths[1]))["articles"]
    assert [a["author"]["username"] for a in listed if a["slug"] == article["slug"]] == [renamed]
    assert (await anonymous(client, paths[2]))["comments"][0]["author"]["username"] == renamed


async def test_a_write_to_one_article_leaves_the_others_cached(client: httpx.AsyncClient) -> None:
    # Per-article scopes: a comment or a favourite refreshes that article (and the lists), not all.
    author = await create_user(client)
    fan = await create_user(client)
    one, other = await create_article(client, author), await create_article(client, author)
    paths = {
        name: f"/api/articles/{article['slug']}{suffix}"
        for name, article, suffix in [
            ("one", one, ""),
            ("one's comments", one, "/comments"),
            ("other", other, ""),
            ("other's comments", other, "/comments"),
        ]
    }
    for path in paths.values():
        await anonymous(client, path)

    await create_comment(client, fan, one["slug"], body="On one")
    await favorite(client, fan, one["slug"])
    articles_hits, comments_hits = lookups("articles", "hit"), lookups("comments", "hit")
    assert [c["body"] for c in (await anonymous(client, paths["one's comments"]))["comments"]] == ["On one"]
    assert (await anonymous(client, paths["one"]))["article"]["favoritesCount"] == 1
    assert (lookups("articles", "hit"), lookups("comments", "hit")) == (articles_hits, comments_hits)
    assert (await anonymous(client, paths["other's comments"]))["comments"] == []
    assert (await anonymous(client, paths["other"]))["article"]["favoritesCount"] == 0
    assert (lookups("articles", "hit"), lookups("comments", "hit")) == (articles_hits + 1, comments_hits + 1)
    listed = (await anonymous(client, f"/api/articles?author={author.username}"))["articles"]
    assert {a["slug"]: a["favoritesCount"] for a in listed} == {one["slug"]: 1, other["slug"]: 0}


async def test_a_renamed_or_deleted_article_is_gone_at_once_with_its_comments(
    client: httpx.AsyncClient,
) -> None:
    author = await create_user(client)
    renamed, deleted = await create_article(client, author), await create_article(client, author)
    for article in (renamed, deleted):
        await create_comment(client, author, article["slug"])
        await anonymous(client, f"/api/articles/{article['slug']}")
        await anonymous(client, f"/api/articles/{article['slug']}/comments")

    changed = await client.put(
        f"/api/articles/{renamed['slug']}", json={"article": {"title": "A new title"}}, headers=author.headers
    )
    assert changed.status_code == 200, changed.text
    new_slug = changed.json()["article"]["slug"]
    assert new_slug != renamed["slug"]
    removed = await client.delete(f"/api/articles/{deleted['slug']}", headers=author.headers)
    assert removed.status_code == 204

    for slug in (renamed["slug"], deleted["slug"]):
        assert (await client.get(f"/api/articles/{slug}")).status_code == 404
        assert (await client.get(f"/api/articles/{slug}/comments")).status_code == 404
    assert (await anonymous(client, f"/api/articles/{new_slug}"))["article"]["title"] == "A new title"
    assert len((await anonymous(client, f"/api/articles/{new_slug}/comments"))["comments"]) == 1


async def test_a_failed_write_invalidates_nothing_and_changes_nothing(client: httpx.AsyncClient) -> None:
    author = await create_user(client)
    other = await create_user(client)
    article = await create_article(client, author)
    path = f"/api/articles/{article['slug']}"
    await anonymous(client, path)
    refused = await client.put(path, json={"article": {"body": "Not yours"}}, headers=other.headers)
    assert refused.status_code == 403
    assert (await anonymous(client, path))["article"]["body"] == "A body"


def requests_counted(handler: str) -> float:
    labels = {"method": "GET", "handler": handler, "status": "2xx"}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


async def test_a_hit_is_counted_and_logged_under_its_route_template(client: httpx.AsyncClient) -> None:
    author = await create_user(client)
    article = await create_article(client, author)
    path = f"/api/articles/{article['slug']}"
    await anonymous(client, path)
    before, hits = requests_counted("/api/articles/{slug}"), lookups("articles", "hit")
    await anonymous(client, path)
    assert lookups("articles", "hit") == hits + 1
    assert requests_counted("/api/articles/{slug}") == before + 1


async def test_errors_and_other_routes_are_never_cached(client: httpx.AsyncClient) -> None:
    author = await create_user(client)
    for _ in range(2):
        # "feed" looks like a slug, but the feed is its own (signed-in) route.
        assert (await client.get("/api/articles/feed")).status_code == 401
        assert (await client.get("/api/articles?limit=0")).status_code == 422
    missing = await client.get("/api/articles/not-yet-written")
    assert missing.status_code == 404
    await create_article(client, author, title="Not yet written")
    assert (await anonymous(client, "/api/articles/not-yet-written"))["article"]["title"] == "Not yet written"
    feed = await client.get("/api/articles/feed", headers=author.headers)
    assert feed.status_code == 200


async def test_a_forgotten_generation_never_brings_back_a_value_stored_under_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Per-article generations expire (a busy site has many articles). They come from a clock that
    # only goes forward, so the one a scope gets after its last expired is one it never had.
    now = [1000.0]
    monkeypatch.setattr(cache_module.time, "monotonic", lambda: now[0])
    backend = LocalBackend(ttl=10)
    scopes, key = ["article", "article:a"], "/api/articles/a?"
    await backend.invalidate(["article:a"])
    lifetime = backend.generations["article:a"][0] - now[0]
    now[0] += lifetime - 1  # the generation's last second: a value stored now outlives it
    slot, _ = await backend.get(scopes, key)
    await backend.put(slot, b"before the write")
    assert (await backend.get(scopes, key))[1] == b"before the write"
    now[0] += 2
    await backend.invalidate(["article:a"])  # the article changes
    assert (await backend.get(scopes, key))[1] is None
    now[0] += 1000
    await backend.invalidate(["article:b"])
    assert list(backend.generations) == ["article:b"]  # expired generations are dropped


async def test_redis_generations_expire_after_the_values_stored_under_them(redis: RedisServer) -> None:
    sync_redis.Redis.from_url(redis.url).flushall()
    backend = RedisBackend(redis.url, ttl=60)
    try:
        slot, _ = await backend.get(["article", "article:a"], "/api/articles/a?")
        await backend.put(slot, b"value")
        await backend.invalidate(["article:a"])
        store = sync_redis.Redis.from_url(redis.url)
        value_ttl = store.ttl(f"inkwell:value:{slot.generations}:/api/articles/a?")
        generation_ttl = store.ttl("inkwell:gen:article:a")
        assert 0 < value_ttl <= 60 < generation_ttl
        assert store.get("inkwell:gen:article:a").split(b":")[0] == store.get("inkwell:clock")
    finally:
        await backend.close()


@pytest.mark.parametrize("kind", ["local", "redis"])
async def test_a_scope_keeps_the_latest_commit_position_that_invalidated_it(
    kind: str, redis: RedisServer
) -> None:
    # With a read replica, a missed read is built only where the replica has replayed this
    # position (service.replica): the invalidation before a commit, which does not know its own
    # position yet, and a late one of an older commit must not lower it.
    sync_redis.Redis.from_url(redis.url).flushall()
    backend = LocalBackend(ttl=60) if kind == "local" else RedisBackend(redis.url, ttl=60)
    key = "/api/articles/a?"

    async def after(*scopes: str) -> int:
        slot, _ = await backend.get(list(scopes), key)
        return slot.after

    try:
        assert await after("article", "article:a") == 0
        await backend.invalidate(["lists", "article:a"], 5_000_000_000)
        assert await after("article", "article:a") == 5_000_000_000
        assert await after("article") == 0
        await backend.invalidate(["article:a"])  # before the next commit
        await backend.invalidate(["article:a"], 4_000)  # an older commit's, late
        assert await after("article", "article:a") == 5_000_000_000
        await backend.invalidate(["article"], 6_000_000_000)
        assert await after("article", "article:a") == 6_000_000_000
        assert await after("lists") == 5_000_000_000
    finally:
        await backend.close()
