"""User administration: admins list, promote, demote, deactivate and reactivate users, and it takes effect at once."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.admin import service as admin_service
from service.auth.roles import Role
from service.errors import Forbidden
from service.models import User
from service.users import repository as users
from tests.factories import Account, create_user

pytestmark = pytest.mark.anyio

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
async def admin(client: httpx.AsyncClient, db: AsyncSession) -> Account:
    return await create_user(client, username="root", role="admin", db=db)


async def stored(db: AsyncSession, username: str) -> tuple[str, bool]:
    row = (await db.execute(select(User.role, User.is_active).where(User.username == username))).one()
    return row.role, row.is_active


async def patch_user(
    client: httpx.AsyncClient, admin: Account, username: str, user: object
) -> httpx.Response:
    return await client.patch(f"/api/admin/users/{username}", json={"user": user}, headers=admin.headers)


async def test_list_pages_users_oldest_first_with_the_total_count(
    client: httpx.AsyncClient, db: AsyncSession, admin: Account
) -> None:
    for name in ("ann", "bob", "cat", "dan"):
        await create_user(client, username=name)

    first = await client.get("/api/admin/users", params={"limit": 2}, headers=admin.headers)
    second = await client.get("/api/admin/users", params={"limit": 2, "offset": 2}, headers=admin.headers)
    beyond = await client.get("/api/admin/users", params={"offset": 10}, headers=admin.headers)

    assert first.status_code == second.status_code == beyond.status_code == 200
    assert [user["username"] for user in first.json()["users"]] == ["root", "ann"]
    assert [user["username"] for user in second.json()["users"]] == ["bob", "cat"]
    assert first.json()["usersCount"] == second.json()["usersCount"] == 5
    assert beyond.json() == {"users": [], "usersCount": 5}


async def test_list_shows_what_public_profiles_hide(client: httpx.AsyncClient, admin: Account) -> None:
    response = await client.get("/api/admin/users", headers=admin.headers)
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    (user,) = response.json()["users"]
    assert set(user) == {"username", "email", "bio", "image", "role", "active", "createdAt", "updatedAt"}
    assert (user["email"], user["role"], user["active"], user["bio"], user["image"]) == (
        "root@example.org",
        "admin",
        True,
        None,
        None,
    )
    assert TIMESTAMP.match(user["createdAt"])
    assert TIMESTAMP.match(user["updatedAt"])


async def test_get_one_user_returns_their_role_and_state(
    client: httpx.AsyncClient, db: AsyncSession, admin: Account
) -> None:
    await create_user(client, username="vera", role="viewer", db=db)
    response = await client.get("/api/admin/users/vera", headers=admin.headers)
    assert response.status_code == 200
    user = response.json()["user"]
    assert (user["username"], user["email"], user["role"], user["active"]) == (
        "vera",
        "vera@example.org",
        "viewer",
        True,
    )


async def test_promoted_viewer_can_publish_on_the_next_request_with_the_same_token(
    client: httpx.AsyncClient, db: AsyncSession, admin: Account
) -> None:
    vera = await create_user(client, username="vera", role="viewer", db=db)
    article = {"article": {"title": "First post", "description": "d", "body": "b"}}
    refused = await client.post("/api/articles", json=article, headers=vera.headers)
    assert refused.status_code == 403
    assert list(refused.json()["errors"]) == ["role"]

    promoted = await patch_user(client, admin, "vera", {"role": "editor"})
    assert promoted.status_code == 200
    assert promoted.json()["user"]["role"] == "editor"
    assert await stored(db, "vera") == ("editor", True)

    published = await client.post("/api/articles", json=article, headers=vera.headers)
    assert published.status_code == 201, published.text
    assert published.json()["article"]["author"]["username"] == "vera"


async def test_demoted_editor_is_refused_publishing_on_the_next_request(
    client: httpx.AsyncClient, db: AsyncSession, admin: Account
) -> None:
    eddie = await create_user(client, username="eddie", role="editor", db=db)
    demoted = await patch_user(client, admin, "eddie", {"role": "viewer"})
    assert demoted.json()["user"]["role"] == "viewer"
    response = await client.post(
        "/api/articles",
        json={"article": {"title": "T", "description": "d", "body": "b"}},
        headers=eddie.headers,
    )
    assert response.status_code == 403
    assert list(response.json()["errors"]) == ["role"]
    assert (await client.get("/api/articles")).json()["articlesCount"] == 0


async def test_deactivated_user_token_and_login_are_refused_at_once(
    client: httpx.AsyncClient, db: AsyncSession, admin: Account
) -> None:
    dora = await create_user(client, username="dora")
    assert (await client.get("/api/user", headers=dora.headers)).status_code == 200

    response = await patch_user(client, admin, "dora", {"active": False})
    assert response.status_code == 200
    assert response.json()["user"]["active"] is False
    assert await stored(db, "dora") == ("editor", False)

    with_token = await client.get("/api/user", headers=dora.headers)
    assert with_token.status_code == 401
    assert list(with_token.json()["errors"]) == ["token"]
    login = await client.post(
        "/api/users/login", json={"user": {"email": dora.email, "password": dora.password}}
    )
    assert login.status_code == 401
    assert list(login.json()["errors"]) == ["credentials"]
    oauth = await client.post("/api/token", data={"username": "dora", "password": dora.password})
    assert oauth.status_code == 401
    assert "access_token" not in oauth.json()


async def test_deactivated_user_cannot_write_with_their_old_token(
    client: httpx.AsyncClient, db: AsyncSession, admin: Account
) -> None:
    dora = await create_user(client, username="dora")
    await patch_user(client, admin, "dora", {"active": False})
    response = await client.post(
        "/api/articles",
        json={"article": {"title": "T", "description": "d", "body": "b"}},
        headers=dora.headers,
    )
    assert response.status_code == 401
    assert (await client.get("/api/articles")).json()["articlesCount"] == 0


async def test_reactivated_user_token_and_login_work_again(
    client: httpx.AsyncClient, db: AsyncSession, admin: Account
) -> None:
    dora = await create_user(client, username="dora")
    await patch_user(client, admin, "dora", {"active": False})
    response = await patch_user(client, admin, "dora", {"active": True})
    assert response.status_code == 200
    assert response.json()["user"]["active"] is True
    assert await stored(db, "dora") == ("editor", True)

    me = await client.get("/api/user", headers=dora.headers)
    assert me.status_code == 200
    assert me.json()["user"]["username"] == "dora"
    login = await client.post(
        "/api/users/login", json={"user": {"email": dora.email, "password": dora.password}}
    )
    assert login.status_code == 200
    assert login.json()["user"]["email"] == dora.email


async def test_role_and_active_change_together_and_an_empty_patch_changes_nothing(
    client: httpx.AsyncClient, db: AsyncSession, admin: Account
) -> None:
    await create_user(client, username="eddie", role="editor", db=db)
    both = await patch_user(client, admin, "eddie", {"role": "admin", "active": False})
    assert (both.json()["user"]["role"], both.json()["user"]["active"]) == ("admin", False)
    empty = await patch_user(client, admin, "eddie", {})
    assert empty.status_code == 200
    assert (empty.json()["user"]["role"], empty.json()["user"]["active"]) == ("admin", False)
    assert await stored(db, "eddie") == ("admin", False)


@pytest.mark.parametrize(("method", "json"), [("GET", None), ("PATCH", {"user": {"role": "viewer"}})])
async def test_unknown_user_is_404_user(
    client: httpx.AsyncClient, admin: Account, method: str, json: object
) -> None:
    response = await client.request(method, "/api/admin/users/nobody", json=json, headers=admin.headers)
    assert response.status_code == 404
    assert list(response.json()) == ["errors"]
    assert list(response.json()["errors"]) == ["user"]


@pytest.mark.parametrize("role", ["superuser", "Admin", "", None, 3])
async def test_invalid_role_is_422_role_and_nothing_changes(
    client: httpx.AsyncClient, db: AsyncSession, admin: Account, role: object
) -> None:
    await create_user(client, username="eddie", role="editor", db=db)
    response = await patch_user(client, admin, "eddie", {"role": role, "active": False})
    if role is None:
        # null means "leave the role as it is"; only the other field changes.
        assert response.status_code == 200
        assert await stored(db, "eddie") == ("editor", False)
        return
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["role"]
    assert await stored(db, "eddie") == ("editor", True)


async def test_active_must_be_a_boolean(client: httpx.AsyncClient, db: AsyncSession, admin: Account) -> None:
    await create_user(client, username="eddie")
    response = await patch_user(client, admin, "eddie", {"active": "nope"})
    assert response.status_code == 422
    assert response.json() == {"errors": {"active": ["must be a boolean"]}}
    assert await stored(db, "eddie") == ("editor", True)


LOSING = [{"role": "editor"}, {"role": "viewer"}, {"active": False}, {"role": "admin", "active": False}]


@pytest.mark.parametrize("change", LOSING)
async def test_the_last_active_admin_cannot_demote_or_deactivate_themselves(
    client: httpx.AsyncClient, db: AsyncSession, admin: Account, change: dict[str, object]
) -> None:
    response = await patch_user(client, admin, "root", change)
    assert response.status_code == 409
    assert response.json() == {"errors": {"user": ["is the last active admin"]}}
    assert await stored(db, "root") == ("admin", True)
    assert (await client.get("/api/admin/users", headers=admin.headers)).status_code == 200


@pytest.mark.parametrize("change", LOSING)
async def test_a_deactivated_admin_does_not_count_as_another_admin(
    client: httpx.AsyncClient, db: AsyncSession, admin: Account, change: dict[str, object]
) -> None:
    await create_user(client, username="dormant", role="admin", db=db)
    await db.execute(update(User).where(User.username == "dormant").values(is_active=False))
    await db.commit()
    response = await patch_user(client, admin, "root", change)
    assert response.status_code == 409
    assert await stored(db, "root") == ("admin", True)


@pytest.mark.parametrize("change", LOSING)
async def test_an_admin_may_step_down_while_another_active_admin_remains(
    client: httpx.AsyncClient, db: AsyncSession, admin: Account, change: dict[str, object]
) -> None:
    second = await create_user(client, username="second", role="admin", db=db)
    response = await patch_user(client, admin, "root", change)
    assert response.status_code == 200, response.text
    assert await stored(db, "root") != ("admin", True)
    # The one left is the last: they cannot follow.
    last = await patch_user(client, second, "second", change)
    assert last.status_code == 409
    assert await stored(db, "second") == ("admin", True)


async def test_an_admin_demoted_while_their_request_ran_is_refused(
    app: Any, client: httpx.AsyncClient, db: AsyncSession, admin: Account
) -> None:
    # What the dependency loaded at the start of the request, then a concurrent demotion.
    await create_user(client, username="second", role="admin", db=db)
    await create_user(client, username="third", role="admin", db=db)
    async with app.state.database.unit_of_work(writable=True) as uow:
        acting = await users.get_by_username(uow, "root")
    await db.execute(update(User).where(User.username == "root").values(role="viewer"))
    await db.commit()
    assert acting is not None
    async with app.state.database.unit_of_work(writable=True) as uow:
        with pytest.raises(Forbidden):
            await admin_service.update_user(
                uow=uow, admin=acting, username="third", role=Role.viewer, active=None
            )
    assert await stored(db, "third") == ("admin", True)


async def test_admin_may_patch_themselves_without_demoting(
    client: httpx.AsyncClient, db: AsyncSession, admin: Account
) -> None:
    response = await patch_user(client, admin, "root", {"role": "admin", "active": True})
    assert response.status_code == 200
    assert await stored(db, "root") == ("admin", True)


async def test_another_admin_may_demote_an_admin(
    client: httpx.AsyncClient, db: AsyncSession, admin: Account
) -> None:
    second = await create_user(client, username="second", role="admin", db=db)
    response = await patch_user(client, second, "root", {"role": "editor"})
    assert response.status_code == 200
    assert await stored(db, "root") == ("editor", True)
    refused = await client.get("/api/admin/users", headers=admin.headers)
    assert refused.status_code == 403


@pytest.mark.parametrize("role", ["viewer", "editor"])
@pytest.mark.parametrize(
    ("method", "path", "json"),
    [
        ("GET", "/api/admin/users", None),
        ("GET", "/api/admin/users/eddie", None),
        ("PATCH", "/api/admin/users/eddie", {"user": {"role": "admin"}}),
        ("PATCH", "/api/admin/users/eddie", {"user": {"active": False}}),
    ],
)
async def test_non_admins_are_refused_with_403_role(
    client: httpx.AsyncClient, db: AsyncSession, role: str, method: str, path: str, json: object
) -> None:
    eddie = await create_user(client, username="eddie", role=role, db=db)
    response = await client.request(method, path, json=json, headers=eddie.headers)
    assert response.status_code == 403
    assert list(response.json()["errors"]) == ["role"]
    assert await stored(db, "eddie") == (role, True)


@pytest.mark.parametrize(
    ("method", "path", "json"),
    [
        ("GET", "/api/admin/users", None),
        ("GET", "/api/admin/users/root", None),
        ("PATCH", "/api/admin/users/root", {"user": {"active": False}}),
    ],
)
async def test_anonymous_callers_are_refused_with_401(
    client: httpx.AsyncClient, db: AsyncSession, admin: Account, method: str, path: str, json: object
) -> None:
    response = await client.request(method, path, json=json)
    assert response.status_code == 401
    assert response.json() == {"errors": {"token": ["is missing"]}}
    assert await stored(db, "root") == ("admin", True)
