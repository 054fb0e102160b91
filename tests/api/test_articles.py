"""Publishing, reading, editing, deleting and listing articles: the core of Conduit's wire contract."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.models import Article, ArticleTag
from tests.factories import Account, create_article, create_user, favorite

pytestmark = pytest.mark.anyio

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ARTICLE_KEYS = {
    "slug",
    "title",
    "description",
    "body",
    "tagList",
    "createdAt",
    "updatedAt",
    "favorited",
    "favoritesCount",
    "author",
}
LIST_ITEM_KEYS = ARTICLE_KEYS - {"body"}


def parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


async def get_article(client: httpx.AsyncClient, slug: str, account: Account | None = None) -> httpx.Response:
    return await client.get(f"/api/articles/{slug}", headers=account.headers if account else {})


async def put_article(
    client: httpx.AsyncClient, account: Account, slug: str, fields: dict[str, Any]
) -> httpx.Response:
    return await client.put(f"/api/articles/{slug}", json={"article": fields}, headers=account.headers)


async def listed_slugs(client: httpx.AsyncClient, query: str = "") -> tuple[list[str], int]:
    response = await client.get(f"/api/articles{query}")
    assert response.status_code == 200, response.text
    body = response.json()
    return [article["slug"] for article in body["articles"]], body["articlesCount"]


async def test_create_returns_201_with_the_full_article(client: httpx.AsyncClient) -> None:
    jake = await create_user(client, username="jake")
    response = await client.post(
        "/api/articles",
        json={
            "article": {
                "title": "How to train your dragon",
                "description": "Ever wonder how?",
                "body": "You have to believe",
                "tagList": ["dragons", "training"],
            }
        },
        headers=jake.headers,
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    article = response.json()["article"]
    assert set(article) == ARTICLE_KEYS
    assert article["slug"] == "how-to-train-your-dragon"
    assert article["title"] == "How to train your dragon"
    assert article["description"] == "Ever wonder how?"
    assert article["body"] == "You have to believe"
    assert article["tagList"] == ["dragons", "training"]
    assert article["favorited"] is False
    assert article["favoritesCount"] == 0
    assert article["author"] == {"username": "jake", "bio": None, "image": None, "following": False}
    assert TIMESTAMP.match(article["createdAt"]), article["createdAt"]
    assert TIMESTAMP.match(article["updatedAt"]), article["updatedAt"]
    assert article["createdAt"] == article["updatedAt"]
    assert abs(parse(article["createdAt"]) - datetime.now(UTC)) < timedelta(minutes=1)


async def test_created_article_is_stored_and_read_back_identically(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    jake = await create_user(client)
    created = await create_article(client, jake, title="Stored once", tags=["a"])
    response = await get_article(client, created["slug"])
    assert response.status_code == 200
    assert response.json() == {"article": created}
    stored = (
        await db.execute(select(Article.title, Article.body).where(Article.slug == "stored-once"))
    ).one()
    assert tuple(stored) == ("Stored once", "A body")


async def test_article_without_tag_list_has_no_tags(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    article = await create_article(client, jake)
    assert article["tagList"] == []


async def test_slug_is_the_title_in_lower_kebab_case(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    article = await create_article(client, jake, title="  Ten Things: Dragons, Training & You!  ")
    assert article["slug"] == "ten-things-dragons-training-you"
    assert article["title"] == "  Ten Things: Dragons, Training & You!  "


async def test_duplicate_titles_give_distinct_slugs_each_resolving_to_its_own_article(
    client: httpx.AsyncClient,
) -> None:
    jake = await create_user(client)
    articles = [await create_article(client, jake, title="Same title", body=f"body {i}") for i in range(3)]
    slugs = [article["slug"] for article in articles]
    assert len(set(slugs)) == 3
    assert slugs[0] == "same-title"
    for i, slug in enumerate(slugs):
        fetched = (await get_article(client, slug)).json()["article"]
        assert fetched["body"] == f"body {i}"
        assert fetched["title"] == "Same title"


@pytest.mark.parametrize(
    "wrong", ["How-To-Train-Your-Dragon", "how-to-train", "how-to-train-your-dragon-2", "how"]
)
async def test_get_by_slug_needs_the_exact_slug(client: httpx.AsyncClient, wrong: str) -> None:
    jake = await create_user(client)
    await create_article(client, jake, title="How to train your dragon")
    response = await get_article(client, wrong)
    assert response.status_code == 404
    assert response.json() == {"errors": {"article": ["not found"]}}
    assert (await get_article(client, "how-to-train-your-dragon")).status_code == 200


async def test_get_unknown_slug_is_404_article(client: httpx.AsyncClient) -> None:
    response = await get_article(client, "no-such-article")
    assert response.status_code == 404
    assert response.json() == {"errors": {"article": ["not found"]}}


@pytest.mark.parametrize(("field", "value"), [("description", "A new description"), ("body", "A new body")])
async def test_update_changes_one_field_and_keeps_the_others(
    client: httpx.AsyncClient, field: str, value: str
) -> None:
    jake = await create_user(client)
    created = await create_article(client, jake, title="Keep me", tags=["x"])
    response = await put_article(client, jake, created["slug"], {field: value})
    assert response.status_code == 200, response.text
    updated = response.json()["article"]
    assert updated[field] == value
    for other in ("slug", "title", "description", "body", "tagList", "createdAt"):
        if other != field:
            assert updated[other] == created[other], other
    assert (await get_article(client, created["slug"])).json()["article"][field] == value


async def test_new_title_gives_a_new_slug_and_the_old_slug_is_404(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    created = await create_article(client, jake, title="Old title", body="unchanged")
    response = await put_article(client, jake, "old-title", {"title": "Brand new title"})
    assert response.status_code == 200, response.text
    updated = response.json()["article"]
    assert updated["title"] == "Brand new title"
    assert updated["slug"] == "brand-new-title"
    assert updated["body"] == "unchanged"
    assert updated["createdAt"] == created["createdAt"]
    old = await get_article(client, "old-title")
    assert old.status_code == 404
    assert old.json() == {"errors": {"article": ["not found"]}}
    assert (await get_article(client, "brand-new-title")).json()["article"]["title"] == "Brand new title"


async def test_same_title_on_update_keeps_the_slug(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    await create_article(client, jake, title="Steady")
    response = await put_article(client, jake, "steady", {"title": "Steady", "body": "edited"})
    assert response.status_code == 200
    assert response.json()["article"]["slug"] == "steady"
    assert (await get_article(client, "steady")).json()["article"]["body"] == "edited"


async def test_new_title_taken_by_another_article_gets_a_distinct_slug(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    await create_article(client, jake, title="Taken")
    await create_article(client, jake, title="Free", body="second")
    response = await put_article(client, jake, "free", {"title": "Taken"})
    assert response.status_code == 200, response.text
    slug = response.json()["article"]["slug"]
    assert slug not in {"taken", "free"}
    assert (await get_article(client, slug)).json()["article"]["body"] == "second"
    assert (await get_article(client, "taken")).json()["article"]["body"] == "A body"


async def test_tag_list_is_kept_when_omitted_on_update(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    created = await create_article(client, jake, tags=["one", "two"])
    response = await put_article(client, jake, created["slug"], {"body": "edited"})
    assert response.json()["article"]["tagList"] == ["one", "two"]
    assert (await get_article(client, created["slug"])).json()["article"]["tagList"] == ["one", "two"]


async def test_tag_list_is_replaced_when_given_on_update(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    created = await create_article(client, jake, tags=["one", "two"])
    response = await put_article(client, jake, created["slug"], {"tagList": ["three", "one"]})
    assert response.json()["article"]["tagList"] == ["one", "three"]
    assert (await get_article(client, created["slug"])).json()["article"]["tagList"] == ["one", "three"]


async def test_tag_list_is_cleared_by_an_empty_list(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    created = await create_article(client, jake, tags=["one", "two"])
    response = await put_article(client, jake, created["slug"], {"tagList": []})
    assert response.json()["article"]["tagList"] == []
    assert (await get_article(client, created["slug"])).json()["article"]["tagList"] == []
    assert (await client.get("/api/articles?tag=one")).json()["articlesCount"] == 0


async def test_tags_are_returned_in_alphabetical_order_without_duplicates(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    follower = await create_user(client)
    await client.post(f"/api/profiles/{jake.username}/follow", headers=follower.headers)
    created = await create_article(client, jake, tags=["zeta", "alpha", "zeta", "Mid", "alpha", "beta"])
    expected = ["Mid", "alpha", "beta", "zeta"]  # code point order, as a client's sort() has it
    assert created["tagList"] == expected
    slug = created["slug"]
    for _ in range(2):  # the second read of each is the cache's
        assert (await get_article(client, slug)).json()["article"]["tagList"] == expected
        assert (await client.get("/api/articles")).json()["articles"][0]["tagList"] == expected
        assert (await client.get("/api/articles?tag=zeta")).json()["articles"][0]["tagList"] == expected
    feed = (await client.get("/api/articles/feed", headers=follower.headers)).json()["articles"]
    assert feed[0]["tagList"] == expected
    updated = await put_article(client, jake, slug, {"tagList": ["b", "a", "c", "a"]})
    assert updated.json()["article"]["tagList"] == ["a", "b", "c"]
    assert (await get_article(client, slug)).json()["article"]["tagList"] == ["a", "b", "c"]


async def test_tags_stored_in_another_order_are_read_in_alphabetical_order(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    # Articles published before tags were sorted keep their authors' order in `position`.
    jake = await create_user(client)
    slug = (await create_article(client, jake, tags=["a", "b", "c"]))["slug"]
    article_id = (await db.execute(select(Article.id).where(Article.slug == slug))).scalar_one()
    await db.execute(
        update(ArticleTag).where(ArticleTag.article_id == article_id).values(position=-ArticleTag.position)
    )
    await db.commit()
    assert (await get_article(client, slug)).json()["article"]["tagList"] == ["a", "b", "c"]
    assert (await client.get("/api/articles")).json()["articles"][0]["tagList"] == ["a", "b", "c"]


async def test_update_moves_updated_at_and_keeps_created_at(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    jake = await create_user(client)
    created = await create_article(client, jake)
    # Backdated, so the comparison does not depend on the clock ticking between two requests.
    past = datetime(2020, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    await db.execute(
        update(Article).where(Article.slug == created["slug"]).values(created_at=past, updated_at=past)
    )
    await db.commit()
    response = await put_article(client, jake, created["slug"], {"description": "later"})
    updated = response.json()["article"]
    assert updated["createdAt"] == "2020-01-02T03:04:05.678Z"
    assert TIMESTAMP.match(updated["updatedAt"])
    assert parse(updated["updatedAt"]) > past
    assert abs(parse(updated["updatedAt"]) - datetime.now(UTC)) < timedelta(minutes=1)


async def test_delete_returns_204_then_the_article_is_404(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    jake = await create_user(client)
    created = await create_article(client, jake)
    response = await client.delete(f"/api/articles/{created['slug']}", headers=jake.headers)
    assert response.status_code == 204
    assert response.content == b""
    gone = await get_article(client, created["slug"])
    assert gone.status_code == 404
    assert gone.json() == {"errors": {"article": ["not found"]}}
    again = await client.delete(f"/api/articles/{created['slug']}", headers=jake.headers)
    assert again.status_code == 404
    assert again.json() == {"errors": {"article": ["not found"]}}
    assert (await db.execute(select(func.count()).select_from(Article))).scalar_one() == 0
    assert await listed_slugs(client) == ([], 0)


async def test_list_is_newest_first(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    slugs = [(await create_article(client, jake, title=f"Article {i}"))["slug"] for i in range(4)]
    assert await listed_slugs(client) == (slugs[::-1], 4)


async def test_list_items_have_no_body(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    created = await create_article(client, jake, tags=["t"])
    response = await client.get("/api/articles")
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    [item] = response.json()["articles"]
    assert set(item) == LIST_ITEM_KEYS
    assert item == {key: value for key, value in created.items() if key != "body"}


async def test_list_filters_by_tag(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    first = await create_article(client, jake, tags=["dragons", "fire"])
    await create_article(client, jake, tags=["fire"])
    third = await create_article(client, jake, tags=["ice", "dragons"])
    await create_article(client, jake)
    assert await listed_slugs(client, "?tag=dragons") == ([third["slug"], first["slug"]], 2)
    assert await listed_slugs(client, "?tag=Dragons") == ([], 0)
    assert await listed_slugs(client, "?tag=nothing") == ([], 0)


async def test_list_filters_by_author(client: httpx.AsyncClient) -> None:
    jake = await create_user(client, username="jake")
    anna = await create_user(client, username="anna")
    first = await create_article(client, jake)
    await create_article(client, anna)
    third = await create_article(client, jake)
    assert await listed_slugs(client, "?author=jake") == ([third["slug"], first["slug"]], 2)
    assert await listed_slugs(client, "?author=nobody") == ([], 0)


async def test_list_filters_by_favorited(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    fan = await create_user(client, username="fan")
    other = await create_user(client)
    first = await create_article(client, jake)
    second = await create_article(client, jake)
    third = await create_article(client, jake)
    await favorite(client, fan, first["slug"])
    await favorite(client, fan, third["slug"])
    await favorite(client, other, second["slug"])
    assert await listed_slugs(client, "?favorited=fan") == ([third["slug"], first["slug"]], 2)
    assert await listed_slugs(client, "?favorited=nobody") == ([], 0)


async def test_filters_combine(client: httpx.AsyncClient) -> None:
    jake = await create_user(client, username="jake")
    anna = await create_user(client, username="anna")
    wanted = await create_article(client, jake, tags=["go"])
    await create_article(client, jake, tags=["rust"])
    await create_article(client, anna, tags=["go"])
    assert await listed_slugs(client, "?tag=go&author=jake") == ([wanted["slug"]], 1)


async def test_limit_and_offset_page_through_with_the_total_count(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    slugs = [(await create_article(client, jake))["slug"] for _ in range(5)][::-1]
    assert await listed_slugs(client, "?limit=2") == (slugs[:2], 5)
    assert await listed_slugs(client, "?limit=2&offset=2") == (slugs[2:4], 5)
    assert await listed_slugs(client, "?limit=2&offset=4") == (slugs[4:], 5)
    assert await listed_slugs(client, "?offset=5") == ([], 5)
    assert await listed_slugs(client, "?offset=1000") == ([], 5)
    assert await listed_slugs(client, "?limit=100&offset=2147483647") == ([], 5)


async def test_default_page_size_is_20(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    for _ in range(21):
        await create_article(client, jake)
    slugs, total = await listed_slugs(client)
    assert (len(slugs), total) == (20, 21)


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("offset=-1", "offset"),
        ("limit=abc", "limit"),
        ("offset=2147483648", "offset"),
    ],
)
async def test_out_of_range_paging_is_422_naming_the_parameter(
    client: httpx.AsyncClient, query: str, key: str
) -> None:
    response = await client.get(f"/api/articles?{query}")
    assert response.status_code == 422
    assert list(response.json()["errors"]) == [key]
