"""Comments: anyone signed in adds them, their author or an admin removes them, they go with the article."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.comments.endpoints import MAX_COMMENTS
from service.models import Comment
from tests.factories import Account, create_article, create_comment, create_user, follow

pytestmark = pytest.mark.anyio

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


async def list_comments(
    client: httpx.AsyncClient, slug: str, viewer: Account | None = None
) -> list[dict[str, Any]]:
    response = await client.get(f"/api/articles/{slug}/comments", headers=viewer.headers if viewer else {})
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["comments"]
    return list(response.json()["comments"])


async def delete_comment(
    client: httpx.AsyncClient, account: Account, slug: str, comment_id: object
) -> httpx.Response:
    return await client.delete(f"/api/articles/{slug}/comments/{comment_id}", headers=account.headers)


async def stored_comment_bodies(db: AsyncSession) -> list[str]:
    return list((await db.execute(select(Comment.body).order_by(Comment.id))).scalars().all())


async def test_adding_a_comment_returns_201_with_its_full_shape(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    author = await create_user(client)
    jake = await create_user(client, username="jake")
    article = await create_article(client, author)
    response = await client.post(
        f"/api/articles/{article['slug']}/comments",
        json={"comment": {"body": "His name was my name too."}},
        headers=jake.headers,
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    comment = response.json()["comment"]
    assert set(comment) == {"id", "createdAt", "updatedAt", "body", "author"}
    assert isinstance(comment["id"], int)
    assert comment["body"] == "His name was my name too."
    assert comment["author"] == {"username": "jake", "bio": None, "image": None, "following": False}
    assert TIMESTAMP.match(comment["createdAt"]), comment["createdAt"]
    assert comment["createdAt"] == comment["updatedAt"]
    stored = (await db.execute(select(Comment.id, Comment.body))).one()
    assert tuple(stored) == (comment["id"], "His name was my name too.")
    assert await list_comments(client, article["slug"]) == [comment]


async def test_a_viewer_role_may_comment(client: httpx.AsyncClient, db: AsyncSession) -> None:
    author = await create_user(client)
    reader = await create_user(client, role="viewer", db=db)
    article = await create_article(client, author)
    comment = await create_comment(client, reader, article["slug"], "from a viewer")
    assert comment["author"]["username"] == reader.username


@pytest.mark.parametrize("body", [{"comment": {"body": ""}}, {"comment": {"body": "   "}}, {"comment": {}}])
async def test_a_blank_comment_is_422_body(client: httpx.AsyncClient, db: AsyncSession, body: object) -> None:
    author = await create_user(client)
    article = await create_article(client, author)
    response = await client.post(
        f"/api/articles/{article['slug']}/comments", json=body, headers=author.headers
    )
    assert response.status_code == 422
    assert response.json() == {"errors": {"body": ["can't be blank"]}}
    assert await stored_comment_bodies(db) == []


async def test_comments_are_listed_newest_first_with_the_viewers_following_flag(
    client: httpx.AsyncClient,
) -> None:
    author = await create_user(client)
    followed = await create_user(client, username="followed")
    unfollowed = await create_user(client, username="unfollowed")
    reader = await create_user(client)
    await follow(client, reader, "followed")
    article = await create_article(client, author)
    first = await create_comment(client, followed, article["slug"], "first")
    second = await create_comment(client, unfollowed, article["slug"], "second")
    third = await create_comment(client, followed, article["slug"], "third")

    seen_by_reader = await list_comments(client, article["slug"], reader)
    assert [c["id"] for c in seen_by_reader] == [third["id"], second["id"], first["id"]]
    assert [c["body"] for c in seen_by_reader] == ["third", "second", "first"]
    assert [(c["author"]["username"], c["author"]["following"]) for c in seen_by_reader] == [
        ("followed", True),
        ("unfollowed", False),
        ("followed", True),
    ]
    anonymous = await list_comments(client, article["slug"])
    assert [c["id"] for c in anonymous] == [third["id"], second["id"], first["id"]]
    assert all(c["author"]["following"] is False for c in anonymous)


async def test_comments_are_listed_only_for_their_own_article(client: httpx.AsyncClient) -> None:
    author = await create_user(client)
    one = await create_article(client, author)
    other = await create_article(client, author)
    mine = await create_comment(client, author, one["slug"], "on one")
    await create_comment(client, author, other["slug"], "on other")
    assert [c["id"] for c in await list_comments(client, one["slug"])] == [mine["id"]]
    assert await list_comments(client, (await create_article(client, author))["slug"]) == []


async def test_deleting_your_own_comment_returns_204_and_removes_it(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    author = await create_user(client)
    jake = await create_user(client)
    article = await create_article(client, author)
    doomed = await create_comment(client, jake, article["slug"], "doomed")
    kept = await create_comment(client, jake, article["slug"], "kept")
    response = await delete_comment(client, jake, article["slug"], doomed["id"])
    assert response.status_code == 204
    assert response.content == b""
    assert [c["id"] for c in await list_comments(client, article["slug"])] == [kept["id"]]
    assert await stored_comment_bodies(db) == ["kept"]
    again = await delete_comment(client, jake, article["slug"], doomed["id"])
    assert again.status_code == 404
    assert again.json() == {"errors": {"comment": ["not found"]}}


@pytest.mark.parametrize("who", ["another reader", "the article's author"])
async def test_deleting_someone_elses_comment_is_403_comment(
    client: httpx.AsyncClient, db: AsyncSession, who: str
) -> None:
    author = await create_user(client)
    commenter = await create_user(client)
    reader = await create_user(client)
    article = await create_article(client, author)
    comment = await create_comment(client, commenter, article["slug"], "mine")
    intruder = author if who == "the article's author" else reader
    response = await delete_comment(client, intruder, article["slug"], comment["id"])
    assert response.status_code == 403
    assert response.json() == {"errors": {"comment": ["forbidden"]}}
    assert await stored_comment_bodies(db) == ["mine"]


async def test_an_admin_may_delete_anyones_comment(client: httpx.AsyncClient, db: AsyncSession) -> None:
    author = await create_user(client)
    admin = await create_user(client, role="admin", db=db)
    article = await create_article(client, author)
    comment = await create_comment(client, author, article["slug"], "moderated")
    response = await delete_comment(client, admin, article["slug"], comment["id"])
    assert response.status_code == 204
    assert await stored_comment_bodies(db) == []


async def test_a_comment_id_of_another_article_is_404_comment(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    author = await create_user(client)
    one = await create_article(client, author)
    other = await create_article(client, author)
    comment = await create_comment(client, author, other["slug"], "on other")
    response = await delete_comment(client, author, one["slug"], comment["id"])
    assert response.status_code == 404
    assert response.json() == {"errors": {"comment": ["not found"]}}
    assert await stored_comment_bodies(db) == ["on other"]


@pytest.mark.parametrize("comment_id", [99999999999, 2**31, 2**63, 0, -1, 424242])
async def test_an_unknown_comment_id_is_404_comment_never_500(
    client: httpx.AsyncClient, comment_id: int
) -> None:
    author = await create_user(client)
    article = await create_article(client, author)
    await create_comment(client, author, article["slug"])
    response = await delete_comment(client, author, article["slug"], comment_id)
    assert response.status_code == 404
    assert response.json() == {"errors": {"comment": ["not found"]}}


async def test_a_comment_id_that_is_not_a_number_is_422_id(client: httpx.AsyncClient) -> None:
    author = await create_user(client)
    article = await create_article(client, author)
    response = await delete_comment(client, author, article["slug"], "abc")
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["id"]


async def test_an_unknown_article_is_404_article_for_every_comment_route(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    article = await create_article(client, jake)
    comment = await create_comment(client, jake, article["slug"])
    base = "/api/articles/no-such-article/comments"
    for response in [
        await client.get(base),
        await client.post(base, json={"comment": {"body": "hello"}}, headers=jake.headers),
        await client.delete(f"{base}/{comment['id']}", headers=jake.headers),
    ]:
        assert response.status_code == 404, response.request
        assert response.json() == {"errors": {"article": ["not found"]}}


async def test_anonymous_readers_cannot_add_comments(client: httpx.AsyncClient, db: AsyncSession) -> None:
    author = await create_user(client)
    article = await create_article(client, author)
    response = await client.post(
        f"/api/articles/{article['slug']}/comments", json={"comment": {"body": "hi"}}
    )
    assert response.status_code == 401
    assert response.json() == {"errors": {"token": ["is missing"]}}
    assert await stored_comment_bodies(db) == []


async def test_anonymous_readers_cannot_delete_comments(client: httpx.AsyncClient, db: AsyncSession) -> None:
    author = await create_user(client)
    article = await create_article(client, author)
    comment = await create_comment(client, author, article["slug"], "stays")
    response = await client.delete(f"/api/articles/{article['slug']}/comments/{comment['id']}")
    assert response.status_code == 401
    assert response.json() == {"errors": {"token": ["is missing"]}}
    assert await stored_comment_bodies(db) == ["stays"]


async def test_comments_are_deleted_with_their_article(client: httpx.AsyncClient, db: AsyncSession) -> None:
    author = await create_user(client)
    reader = await create_user(client)
    doomed = await create_article(client, author, title="Doomed")
    kept = await create_article(client, author, title="Kept")
    await create_comment(client, reader, doomed["slug"], "goes")
    await create_comment(client, author, doomed["slug"], "goes too")
    await create_comment(client, reader, kept["slug"], "stays")
    assert (await client.delete(f"/api/articles/{doomed['slug']}", headers=author.headers)).status_code == 204
    assert await stored_comment_bodies(db) == ["stays"]
    gone = await client.get(f"/api/articles/{doomed['slug']}/comments")
    assert gone.status_code == 404
    assert gone.json() == {"errors": {"article": ["not found"]}}
    # A new article under the same slug starts without the old one's comments.
    reborn = await create_article(client, author, title="Doomed")
    assert reborn["slug"] == doomed["slug"]
    assert await list_comments(client, reborn["slug"]) == []
    assert (await db.execute(select(func.count()).select_from(Comment))).scalar_one() == 1


async def test_comments_come_a_page_at_a_time_with_limit_and_offset(client: httpx.AsyncClient) -> None:
    author = await create_user(client)
    article = await create_article(client, author)
    for i in range(5):
        await create_comment(client, author, article["slug"], f"comment {i}")
    newest_first = [f"comment {i}" for i in reversed(range(5))]
    pages = [
        await client.get(f"/api/articles/{article['slug']}/comments", params={"limit": 2, "offset": offset})
        for offset in (0, 2, 4, 6)
    ]
    assert [[c["body"] for c in page.json()["comments"]] for page in pages] == [
        newest_first[0:2],
        newest_first[2:4],
        newest_first[4:],
        [],
    ]
    assert [c["body"] for c in await list_comments(client, article["slug"])] == newest_first


async def test_without_a_limit_one_response_carries_the_newest_comments_up_to_the_cap(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    author = await create_user(client)
    article = await create_article(client, author)
    first = await create_comment(client, author, article["slug"], "the oldest")
    article_id, author_id = (
        await db.execute(select(Comment.article_id, Comment.author_id).where(Comment.id == first["id"]))
    ).one()
    stored = await db.execute(select(Comment.created_at).where(Comment.id == first["id"]))
    oldest = stored.scalar_one()
    db.add_all(
        Comment(
            body=f"later {i}",
            article_id=article_id,
            author_id=author_id,
            created_at=oldest + timedelta(seconds=i + 1),
            updated_at=oldest + timedelta(seconds=i + 1),
        )
        for i in range(MAX_COMMENTS)
    )
    await db.commit()
    listed = await list_comments(client, article["slug"])
    assert len(listed) == MAX_COMMENTS
    assert listed[0]["body"] == f"later {MAX_COMMENTS - 1}"
    assert "the oldest" not in {c["body"] for c in listed}
    rest = await client.get(f"/api/articles/{article['slug']}/comments", params={"offset": MAX_COMMENTS})
    assert [c["body"] for c in rest.json()["comments"]] == ["the oldest"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": MAX_COMMENTS + 1}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 2**31}, "offset"),
    ],
)
async def test_a_bad_comments_page_is_422_naming_the_parameter(
    client: httpx.AsyncClient, params: dict[str, object], field: str
) -> None:
    author = await create_user(client)
    article = await create_article(client, author)
    response = await client.get(f"/api/articles/{article['slug']}/comments", params=params)
    assert response.status_code == 422
    assert list(response.json()["errors"]) == [field]
