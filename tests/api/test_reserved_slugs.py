"""No slug may be a word a route holds in the slug's place: an article titled "Feed" slugged `feed`
could never be read, `GET /api/articles/feed` being the feed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from service.articles.endpoints import reserved_segments
from tests.factories import create_article, create_user

pytestmark = pytest.mark.anyio


async def test_the_reserved_words_are_read_from_the_apps_routes(app: Any) -> None:
    assert reserved_segments(app.routes) == {"feed"}


async def test_a_route_added_beside_the_slug_is_reserved_with_it(app: Any) -> None:
    extra = FastAPI()
    extra.router.routes.extend(app.routes)
    more = APIRouter(prefix="/api")
    more.add_api_route("/articles/Archive", lambda: None, methods=["GET"])
    more.add_api_route("/articles/{slug}/history", lambda: None, methods=["GET"])  # after the slug: no clash
    more.add_api_route("/profiles/popular", lambda: None, methods=["GET"])  # another prefix: no clash
    extra.include_router(more)
    assert reserved_segments(extra.routes) == {"feed", "archive"}


async def test_every_reserved_word_as_a_title_gets_a_readable_suffixed_slug(
    app: Any, client: httpx.AsyncClient
) -> None:
    jake = await create_user(client)
    reserved = sorted(reserved_segments(app.routes))
    assert reserved  # `feed` at least: the test below must cover something
    for word in reserved:
        for title in (word, word.upper(), f" {word.title()}! "):
            article = await create_article(client, jake, title=title)
            assert article["slug"] != word
            assert article["slug"].startswith(f"{word}-")
            read = await client.get(f"/api/articles/{article['slug']}")
            assert read.status_code == 200, read.text
            assert read.json()["article"]["title"] == title


async def test_a_new_title_that_is_a_reserved_word_gets_a_suffixed_slug(
    app: Any, client: httpx.AsyncClient
) -> None:
    jake = await create_user(client)
    for word in sorted(reserved_segments(app.routes)):
        slug = (await create_article(client, jake, title="Something else"))["slug"]
        response = await client.put(
            f"/api/articles/{slug}", json={"article": {"title": word.title()}}, headers=jake.headers
        )
        assert response.status_code == 200, response.text
        new_slug = response.json()["article"]["slug"]
        assert new_slug.startswith(f"{word}-")
        assert (await client.get(f"/api/articles/{new_slug}")).status_code == 200


async def test_the_feed_still_answers_at_its_path(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    await create_article(client, jake, title="Feed")
    response = await client.get("/api/articles/feed", headers=jake.headers)
    assert response.status_code == 200
    assert set(response.json()) == {"articles", "articlesCount"}
