"""Who may do what: every actor against every action, with the exact status and no trace left by a refusal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import Account, create_article, create_comment, create_user

pytestmark = pytest.mark.anyio

ACTORS = ("anonymous", "viewer", "editor", "other_editor", "admin")
SIGNED_IN = ACTORS[1:]

# Every table a request could touch, as plain rows, so "nothing changed" is a comparison of values.
SNAPSHOT_QUERIES = {
    "users": "SELECT username, email, role, is_active, bio, image FROM users ORDER BY username",
    "articles": "SELECT id, slug, title, description, body, author_id, favorites_count FROM articles ORDER BY id",
    "article_tags": "SELECT article_id, tag_id, position FROM article_tags ORDER BY article_id, position",
    "tags": "SELECT name FROM tags ORDER BY name",
    "comments": "SELECT id, article_id, author_id, body FROM comments ORDER BY id",
    "favorites": "SELECT user_id, article_id FROM favorites ORDER BY user_id, article_id",
    "follows": "SELECT follower_id, followee_id FROM follows ORDER BY follower_id, followee_id",
}

Snapshot = dict[str, list[tuple[Any, ...]]]


async def snapshot(db: AsyncSession) -> Snapshot:
    return {
        table: [tuple(row) for row in (await db.execute(text(query))).all()]
        for table, query in SNAPSHOT_QUERIES.items()
    }


@dataclass
class World:
    """An article by `editor`, a comment on it by a bystander, and one comment by each signed-in actor."""

    accounts: dict[str, Account]
    bystander: Account
    ids: dict[str, int]  # username -> users.id
    slug: str
    article_id: int
    bystander_comment_id: int
    own_comment_ids: dict[str, int]

    def account(self, actor: str) -> Account | None:
        return self.accounts.get(actor)

    def headers(self, actor: str) -> dict[str, str]:
        account = self.account(actor)
        return account.headers if account else {}

    def user_id(self, actor: str) -> int:
        return self.ids[self.accounts[actor].username]


async def build_world(client: httpx.AsyncClient, db: AsyncSession) -> World:
    accounts = {
        "viewer": await create_user(client, username="viewer", role="viewer", db=db),
        "editor": await create_user(client, username="editor", role="editor", db=db),
        "other_editor": await create_user(client, username="other", role="editor", db=db),
        "admin": await create_user(client, username="admin", role="admin", db=db),
    }
    bystander = await create_user(client, username="bystander", role="editor", db=db)
    article = await create_article(
        client, accounts["editor"], title="Target article", body="Target body", tags=["alpha", "beta"]
    )
    bystander_comment = await create_comment(client, bystander, article["slug"], body="Bystander's comment")
    own_comment_ids = {
        actor: (
            await create_comment(client, accounts[actor], article["slug"], body=f"{actor}'s own comment")
        )["id"]
        for actor in SIGNED_IN
    }
    ids = dict((await db.execute(text("SELECT username, id FROM users"))).tuples().all())
    article_id = (
        await db.execute(text("SELECT id FROM articles WHERE slug = :s"), {"s": article["slug"]})
    ).scalar_one()
    return World(
        accounts=accounts,
        bystander=bystander,
        ids=ids,
        slug=article["slug"],
        article_id=article_id,
        bystander_comment_id=bystander_comment["id"],
        own_comment_ids=own_comment_ids,
    )


Check = Callable[[World, str, httpx.Response, Snapshot, Snapshot], None]


@dataclass
class Action:
    method: str
    path: Callable[[World, str], str]
    json: Callable[[World], Any] | None
    # actor -> (status, error key when refused)
    expected: dict[str, tuple[int, str | None]]
    # Tables the successful request is meant to change; every other table must stay as it was.
    touches: frozenset[str]
    check: Check


def everyone(status: int) -> dict[str, tuple[int, str | None]]:
    return dict.fromkeys(ACTORS, (status, None))


def signed_in(status: int) -> dict[str, tuple[int, str | None]]:
    return {"anonymous": (401, "token")} | dict.fromkeys(SIGNED_IN, (status, None))


def only_admin(status: int) -> dict[str, tuple[int, str | None]]:
    return {
        "anonymous": (401, "token"),
        "viewer": (403, "role"),
        "editor": (403, "role"),
        "other_editor": (403, "role"),
        "admin": (status, None),
    }


def check_list(world: World, actor: str, response: httpx.Response, before: Snapshot, after: Snapshot) -> None:
    listing = response.json()
    assert listing["articlesCount"] == 1
    assert [item["slug"] for item in listing["articles"]] == [world.slug]


def check_article(
    world: World, actor: str, response: httpx.Response, before: Snapshot, after: Snapshot
) -> None:
    article = response.json()["article"]
    assert (article["slug"], article["body"], article["tagList"]) == (
        world.slug,
        "Target body",
        ["alpha", "beta"],
    )
    assert article["author"]["username"] == "editor"


def check_comments(
    world: World, actor: str, response: httpx.Response, before: Snapshot, after: Snapshot
) -> None:
    bodies = {comment["body"] for comment in response.json()["comments"]}
    assert bodies == {"Bystander's comment"} | {f"{name}'s own comment" for name in SIGNED_IN}


def check_created(
    world: World, actor: str, response: httpx.Response, before: Snapshot, after: Snapshot
) -> None:
    assert response.json()["article"]["author"]["username"] == world.accounts[actor].username
    new = [row for row in after["articles"] if row not in before["articles"]]
    assert [(row[2], row[5]) for row in new] == [("Fresh title", world.user_id(actor))]
    assert len(after["articles"]) == len(before["articles"]) + 1


def check_updated(
    world: World, actor: str, response: httpx.Response, before: Snapshot, after: Snapshot
) -> None:
    assert response.json()["article"]["title"] == "Updated title"
    row = next(row for row in after["articles"] if row[0] == world.article_id)
    # The author stays the editor even when an admin edits.
    assert (row[1], row[2], row[4], row[5]) == (
        "updated-title",
        "Updated title",
        "Target body",
        world.user_id("editor"),
    )
    assert len(after["articles"]) == len(before["articles"])


def check_deleted(
    world: World, actor: str, response: httpx.Response, before: Snapshot, after: Snapshot
) -> None:
    assert response.content == b""
    assert [row for row in after["articles"] if row[0] == world.article_id] == []
    assert [row for row in after["comments"] if row[1] == world.article_id] == []
    assert [row for row in after["article_tags"] if row[0] == world.article_id] == []


def check_commented(
    world: World, actor: str, response: httpx.Response, before: Snapshot, after: Snapshot
) -> None:
    comment = response.json()["comment"]
    assert (comment["body"], comment["author"]["username"]) == (
        "A new comment",
        world.accounts[actor].username,
    )
    new = [row for row in after["comments"] if row not in before["comments"]]
    assert new == [(comment["id"], world.article_id, world.user_id(actor), "A new comment")]


def check_own_comment_gone(
    world: World, actor: str, response: httpx.Response, before: Snapshot, after: Snapshot
) -> None:
    assert response.content == b""
    gone = [row for row in before["comments"] if row not in after["comments"]]
    assert [row[0] for row in gone] == [world.own_comment_ids[actor]]


def check_others_comment_gone(
    world: World, actor: str, response: httpx.Response, before: Snapshot, after: Snapshot
) -> None:
    assert response.content == b""
    gone = [row for row in before["comments"] if row not in after["comments"]]
    assert [row[0] for row in gone] == [world.bystander_comment_id]


def check_favourited(
    world: World, actor: str, response: httpx.Response, before: Snapshot, after: Snapshot
) -> None:
    article = response.json()["article"]
    assert (article["favorited"], article["favoritesCount"]) == (True, 1)
    assert after["favorites"] == [(world.user_id(actor), world.article_id)]
    row = next(row for row in after["articles"] if row[0] == world.article_id)
    assert row[6] == 1


def check_followed(
    world: World, actor: str, response: httpx.Response, before: Snapshot, after: Snapshot
) -> None:
    assert response.json()["profile"] == {
        "username": "bystander",
        "bio": None,
        "image": None,
        "following": True,
    }
    assert after["follows"] == [(world.user_id(actor), world.ids["bystander"])]


def check_user_list(
    world: World, actor: str, response: httpx.Response, before: Snapshot, after: Snapshot
) -> None:
    page = response.json()
    assert page["usersCount"] == 5
    assert [user["username"] for user in page["users"]] == ["viewer", "editor", "other", "admin", "bystander"]


def check_role_changed(
    world: World, actor: str, response: httpx.Response, before: Snapshot, after: Snapshot
) -> None:
    assert response.json()["user"]["role"] == "viewer"
    changed = [row for row in after["users"] if row not in before["users"]]
    assert [(row[0], row[2]) for row in changed] == [("bystander", "viewer")]


NOTHING: frozenset[str] = frozenset()

ACTIONS: dict[str, Action] = {
    "read list": Action("GET", lambda w, a: "/api/articles", None, everyone(200), NOTHING, check_list),
    "read article": Action(
        "GET", lambda w, a: f"/api/articles/{w.slug}", None, everyone(200), NOTHING, check_article
    ),
    "read comments": Action(
        "GET", lambda w, a: f"/api/articles/{w.slug}/comments", None, everyone(200), NOTHING, check_comments
    ),
    "create article": Action(
        "POST",
        lambda w, a: "/api/articles",
        lambda w: {
            "article": {"title": "Fresh title", "description": "d", "body": "b", "tagList": ["alpha"]}
        },
        {"anonymous": (401, "token"), "viewer": (403, "role")} | dict.fromkeys(SIGNED_IN[1:], (201, None)),
        frozenset({"articles", "article_tags"}),
        check_created,
    ),
    "update article": Action(
        "PUT",
        lambda w, a: f"/api/articles/{w.slug}",
        lambda w: {"article": {"title": "Updated title"}},
        {
            "anonymous": (401, "token"),
            "viewer": (403, "role"),
            "editor": (200, None),
            "other_editor": (403, "article"),
            "admin": (200, None),
        },
        frozenset({"articles"}),
        check_updated,
    ),
    "delete article": Action(
        "DELETE",
        lambda w, a: f"/api/articles/{w.slug}",
        None,
        {
            "anonymous": (401, "token"),
            "viewer": (403, "role"),
            "editor": (204, None),
            "other_editor": (403, "article"),
            "admin": (204, None),
        },
        # Tags themselves may outlive their last article; what matters is the article's own rows.
        frozenset({"articles", "article_tags", "comments", "tags"}),
        check_deleted,
    ),
    "comment": Action(
        "POST",
        lambda w, a: f"/api/articles/{w.slug}/comments",
        lambda w: {"comment": {"body": "A new comment"}},
        signed_in(201),
        frozenset({"comments"}),
        check_commented,
    ),
    "delete own comment": Action(
        "DELETE",
        # Anonymous callers own no comment; they try the bystander's.
        lambda w, a: f"/api/articles/{w.slug}/comments/{w.own_comment_ids.get(a, w.bystander_comment_id)}",
        None,
        signed_in(204),
        frozenset({"comments"}),
        check_own_comment_gone,
    ),
    "delete someone else's comment": Action(
        "DELETE",
        lambda w, a: f"/api/articles/{w.slug}/comments/{w.bystander_comment_id}",
        None,
        {"anonymous": (401, "token")}
        | dict.fromkeys(("viewer", "editor", "other_editor"), (403, "comment"))
        | {"admin": (204, None)},
        frozenset({"comments"}),
        check_others_comment_gone,
    ),
    "favourite": Action(
        "POST",
        lambda w, a: f"/api/articles/{w.slug}/favorite",
        None,
        signed_in(200),
        frozenset({"favorites", "articles"}),
        check_favourited,
    ),
    "follow": Action(
        "POST",
        lambda w, a: "/api/profiles/bystander/follow",
        None,
        signed_in(200),
        frozenset({"follows"}),
        check_followed,
    ),
    "admin list users": Action(
        "GET", lambda w, a: "/api/admin/users", None, only_admin(200), NOTHING, check_user_list
    ),
    "admin change role": Action(
        "PATCH",
        lambda w, a: "/api/admin/users/bystander",
        lambda w: {"user": {"role": "viewer"}},
        only_admin(200),
        frozenset({"users"}),
        check_role_changed,
    ),
}

CELLS = [
    pytest.param(action, actor, *ACTIONS[action].expected[actor], id=f"{action}-{actor}")
    for action in ACTIONS
    for actor in ACTORS
]


def test_matrix_covers_every_actor_for_every_action() -> None:
    assert all(set(action.expected) == set(ACTORS) for action in ACTIONS.values())
    assert len(CELLS) == len(ACTIONS) * len(ACTORS) == 65


@pytest.mark.parametrize(("action_name", "actor", "status", "error_key"), CELLS)
async def test_role_matrix_cell_returns_exact_status_and_refusals_change_nothing(
    client: httpx.AsyncClient,
    db: AsyncSession,
    action_name: str,
    actor: str,
    status: int,
    error_key: str | None,
) -> None:
    action = ACTIONS[action_name]
    world = await build_world(client, db)
    before = await snapshot(db)

    kwargs: dict[str, Any] = {"headers": world.headers(actor)}
    if action.json is not None:
        kwargs["json"] = action.json(world)
    response = await client.request(action.method, action.path(world, actor), **kwargs)
    after = await snapshot(db)

    assert response.status_code == status, response.text
    if error_key is not None:
        errors = response.json()["errors"]
        assert list(errors) == [error_key]
        assert errors[error_key]
        assert all(isinstance(message, str) for message in errors[error_key])
        if error_key == "token":
            assert errors == {"token": ["is missing"]}
        assert after == before
        return

    action.check(world, actor, response, before, after)
    untouched = set(SNAPSHOT_QUERIES) - action.touches
    assert {table: after[table] for table in untouched} == {table: before[table] for table in untouched}
