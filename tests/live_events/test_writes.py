"""Each write a live client cares about publishes exactly its events, in order, once it commits:
the objects in them are those the REST response returned, as an anonymous reader sees them; a
write that changes nothing (favouriting or following twice) and a read publish nothing."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from service.live import events as live
from tests.factories import create_article, create_comment, create_user, favorite, follow
from tests.live_events.conftest import Recording, anonymous_article, anonymous_comment, user_id

pytestmark = pytest.mark.anyio


async def test_a_comment_is_told_to_the_article_and_to_its_author(
    client: httpx.AsyncClient, db: AsyncSession, published: Recording
) -> None:
    author = await create_user(client)
    reader = await create_user(client)
    article = await create_article(client, author, title="Commented on")
    published.take()
    comment = await create_comment(client, reader, article["slug"], body="First!")
    (on_article, on_author) = published.take()
    assert (on_article.topic, on_article.type) == (live.article_topic(article["slug"]), live.COMMENT_CREATED)
    assert on_article.data == {"comment": anonymous_comment(comment)}
    assert (on_author.topic, on_author.type) == (
        live.user_topic(await user_id(db, author.username)),
        live.ARTICLE_COMMENTED,
    )
    assert on_author.data == {
        "comment": anonymous_comment(comment),
        "article": {"slug": article["slug"], "title": "Commented on"},
    }
    # One unit, one batch (the publication's was the first), in the order emitted.
    assert published.attempts == 2


async def test_an_author_commenting_on_their_own_article_is_not_told_of_it(
    client: httpx.AsyncClient, published: Recording
) -> None:
    author = await create_user(client)
    article = await create_article(client, author)
    published.take()
    comment = await create_comment(client, author, article["slug"])
    assert published.seen() == [(live.article_topic(article["slug"]), live.COMMENT_CREATED)]
    assert published.events[0].data == {"comment": anonymous_comment(comment)}


async def test_a_deleted_comment_is_told_by_its_id_and_a_refused_deletion_tells_nothing(
    client: httpx.AsyncClient, published: Recording
) -> None:
    author = await create_user(client)
    stranger = await create_user(client)
    article = await create_article(client, author)
    comment = await create_comment(client, author, article["slug"])
    published.take()
    path = f"/api/articles/{article['slug']}/comments/{comment['id']}"
    assert (await client.delete(path, headers=stranger.headers)).status_code == 403
    assert published.take() == []
    assert (await client.delete(path, headers=author.headers)).status_code == 204
    (event,) = published.take()
    assert (event.topic, event.type) == (live.article_topic(article["slug"]), live.COMMENT_DELETED)
    assert event.data == {"comment": {"id": comment["id"]}}


async def test_a_publication_is_told_to_the_authors_followers(
    client: httpx.AsyncClient, db: AsyncSession, published: Recording
) -> None:
    author = await create_user(client)
    published.take()
    article = await create_article(client, author, tags=["live", "events"])
    (event,) = published.take()
    assert (event.topic, event.type) == (
        live.author_topic(await user_id(db, author.username)),
        live.ARTICLE_PUBLISHED,
    )
    assert event.data == {"article": anonymous_article(article)}


async def test_an_edit_is_told_on_the_slug_subscribers_know_and_carries_the_new_one(
    client: httpx.AsyncClient, published: Recording
) -> None:
    author = await create_user(client)
    article = await create_article(client, author, title="Before")
    old = article["slug"]
    await favorite(client, author, old)  # so the editor's own view differs from everyone's
    published.take()
    edited = await client.put(
        f"/api/articles/{old}", json={"article": {"title": "After", "body": "new"}}, headers=author.headers
    )
    assert edited.status_code == 200, edited.text
    after = edited.json()["article"]
    assert (after["slug"] != old, after["favorited"], after["favoritesCount"]) == (True, True, 1)
    (event,) = published.take()
    assert (event.topic, event.type) == (live.article_topic(old), live.ARTICLE_UPDATED)
    assert event.data == {"article": anonymous_article(after)}
    assert event.data["article"]["slug"] == after["slug"]


async def test_a_deletion_is_told_on_the_articles_topic(
    client: httpx.AsyncClient, published: Recording
) -> None:
    author = await create_user(client)
    article = await create_article(client, author)
    published.take()
    assert (
        await client.delete(f"/api/articles/{article['slug']}", headers=author.headers)
    ).status_code == 204
    (event,) = published.take()
    assert (event.topic, event.type) == (live.article_topic(article["slug"]), live.ARTICLE_DELETED)
    assert event.data == {"article": {"slug": article["slug"]}}


async def test_a_favourite_tells_the_count_as_committed_and_the_author_who(
    client: httpx.AsyncClient, db: AsyncSession, published: Recording
) -> None:
    author = await create_user(client)
    fan = await create_user(client)
    await client.put("/api/user", json={"user": {"bio": "a fan"}}, headers=fan.headers)
    article = await create_article(client, author, title="Liked")
    published.take()
    favourited = await favorite(client, fan, article["slug"])
    assert (favourited["favorited"], favourited["favoritesCount"]) == (True, 1)
    assert published.seen() == [
        (live.article_topic(article["slug"]), live.ARTICLE_FAVORITES),
        (live.user_topic(await user_id(db, author.username)), live.ARTICLE_FAVORITED),
    ]
    count, who = published.take()
    assert count.data == {"article": {"slug": article["slug"], "favoritesCount": 1}}
    assert who.data == {
        "article": {"slug": article["slug"], "title": "Liked"},
        "profile": {"username": fan.username, "bio": "a fan", "image": None, "following": False},
    }
    # Favouriting again changes nothing: nobody is told anything.
    await favorite(client, fan, article["slug"])
    assert published.take() == []


async def test_an_unfavourite_tells_only_the_count_and_once(
    client: httpx.AsyncClient, published: Recording
) -> None:
    author = await create_user(client)
    fans = [await create_user(client) for _ in range(2)]
    article = await create_article(client, author)
    for fan in fans:
        await favorite(client, fan, article["slug"])
    published.take()
    for _ in range(2):
        response = await client.delete(f"/api/articles/{article['slug']}/favorite", headers=fans[0].headers)
        assert response.status_code == 200, response.text
    (event,) = published.take()
    assert (event.topic, event.type) == (live.article_topic(article["slug"]), live.ARTICLE_FAVORITES)
    assert event.data == {"article": {"slug": article["slug"], "favoritesCount": 1}}


async def test_an_author_favouriting_their_own_article_is_told_only_as_a_count(
    client: httpx.AsyncClient, published: Recording
) -> None:
    author = await create_user(client)
    article = await create_article(client, author)
    published.take()
    await favorite(client, author, article["slug"])
    assert published.seen() == [(live.article_topic(article["slug"]), live.ARTICLE_FAVORITES)]


async def test_following_tells_the_followee_and_the_hub_and_unfollowing_only_the_hub(
    client: httpx.AsyncClient, db: AsyncSession, published: Recording
) -> None:
    author = await create_user(client)
    reader = await create_user(client)
    author_id, reader_id = await user_id(db, author.username), await user_id(db, reader.username)
    published.take()
    await follow(client, reader, author.username)
    followed, changed = published.take()
    assert (followed.topic, followed.type) == (live.user_topic(author_id), live.PROFILE_FOLLOWED)
    assert followed.data == {
        "profile": {"username": reader.username, "bio": None, "image": None, "following": False}
    }
    assert (changed.topic, changed.type) == (live.user_topic(reader_id), live.FOLLOWING_CHANGED)
    assert changed.data == {"author": author_id, "following": True}
    assert changed.internal
    await follow(client, reader, author.username)
    assert published.take() == []
    for _ in range(2):
        response = await client.delete(f"/api/profiles/{author.username}/follow", headers=reader.headers)
        assert response.status_code == 200, response.text
    (unfollowed,) = published.take()
    assert (unfollowed.topic, unfollowed.type) == (live.user_topic(reader_id), live.FOLLOWING_CHANGED)
    assert unfollowed.data == {"author": author_id, "following": False}


async def test_a_deactivation_is_told_to_the_hub_once_and_other_admin_changes_are_not(
    client: httpx.AsyncClient, db: AsyncSession, published: Recording
) -> None:
    admin = await create_user(client, role="admin", db=db)
    user = await create_user(client)
    target = await user_id(db, user.username)
    published.take()
    path = f"/api/admin/users/{user.username}"
    promoted = await client.patch(path, json={"user": {"role": "editor"}}, headers=admin.headers)
    assert promoted.status_code == 200, promoted.text
    assert published.take() == []
    for _ in range(2):
        response = await client.patch(path, json={"user": {"active": False}}, headers=admin.headers)
        assert response.status_code == 200, response.text
    (event,) = published.take()
    assert (event.topic, event.type, event.data) == (live.user_topic(target), live.USER_DEACTIVATED, {})
    assert event.internal


async def test_reads_publish_nothing(client: httpx.AsyncClient, published: Recording) -> None:
    author = await create_user(client)
    article = await create_article(client, author)
    published.take()
    for path in (
        "/api/articles",
        f"/api/articles/{article['slug']}",
        f"/api/articles/{article['slug']}/comments",
    ):
        assert (await client.get(path)).status_code == 200
    assert published.take() == []
    assert published.attempts == 1  # the publication's (a registration tells nobody)


async def test_an_edit_by_a_follower_of_the_author_tells_everyone_what_anyone_sees(
    client: httpx.AsyncClient, db: AsyncSession, published: Recording
) -> None:
    author = await create_user(client)
    admin = await create_user(client, role="admin", db=db)
    article = await create_article(client, author)
    await follow(client, admin, author.username)
    published.take()
    edited = await client.put(
        f"/api/articles/{article['slug']}", json={"article": {"body": "fixed"}}, headers=admin.headers
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["article"]["author"]["following"] is True
    (event,) = published.take()
    assert event.data == {"article": anonymous_article(edited.json()["article"])}
    assert event.data["article"]["author"]["following"] is False
