"""A first end-to-end pass: register, publish, read back."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import create_article, create_user

pytestmark = pytest.mark.anyio


async def test_published_article_is_listed_with_its_author(client: httpx.AsyncClient) -> None:
    jake = await create_user(client, username="jake")
    article = await create_article(
        client, jake, title="How to train your dragon", tags=["dragons", "training"]
    )
    assert article["slug"] == "how-to-train-your-dragon"
    listing = (await client.get("/api/articles")).json()
    assert listing["articlesCount"] == 1
    assert listing["articles"][0]["tagList"] == ["dragons", "training"]
    assert listing["articles"][0]["author"]["username"] == "jake"
    assert "body" not in listing["articles"][0]


async def test_each_test_starts_with_an_empty_database(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/articles")).json() == {"articles": [], "articlesCount": 0}
