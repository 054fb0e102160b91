"""Profiles and follows (`/api/profiles/{username}` and `/follow`): what anyone sees and what following changes."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.models import Follow, User
from tests.factories import Account, create_user, follow

pytestmark = pytest.mark.anyio


async def follows_of(db: AsyncSession, follower: Account) -> list[str]:
    """Usernames the follower follows, read from the follows table."""
    followee = User.__table__.alias("followee")
    follower_row = User.__table__.alias("follower")
    rows = await db.execute(
        select(followee.c.username)
        .select_from(Follow)
        .join(followee, followee.c.id == Follow.followee_id)
        .join(follower_row, follower_row.c.id == Follow.follower_id)
        .where(follower_row.c.username == follower.username)
        .order_by(followee.c.username)
    )
    return list(rows.scalars())


async def test_anonymous_profile_has_the_conduit_shape_and_is_not_followed(client: httpx.AsyncClient) -> None:
    jake = await create_user(client, username="jake")
    await client.put(
        "/api/user",
        json={"user": {"bio": "I work at statefarm", "image": "https://e.org/j.png"}},
        headers=jake.headers,
    )
    response = await client.get("/api/profiles/jake")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == {
        "profile": {
            "username": "jake",
            "bio": "I work at statefarm",
            "image": "https://e.org/j.png",
            "following": False,
        }
    }


async def test_profile_of_a_new_user_has_null_bio_and_image(client: httpx.AsyncClient) -> None:
    await create_user(client, username="jake")
    response = await client.get("/api/profiles/jake")
    assert response.json() == {
        "profile": {"username": "jake", "bio": None, "image": None, "following": False}
    }


async def test_signed_in_profile_says_following_only_for_followed_users(client: httpx.AsyncClient) -> None:
    reader = await create_user(client, username="reader")
    await create_user(client, username="followed")
    await create_user(client, username="stranger")
    await follow(client, reader, "followed")
    followed = (await client.get("/api/profiles/followed", headers=reader.headers)).json()["profile"]
    stranger = (await client.get("/api/profiles/stranger", headers=reader.headers)).json()["profile"]
    assert followed["following"] is True
    assert stranger["following"] is False


async def test_following_is_per_viewer(client: httpx.AsyncClient) -> None:
    reader = await create_user(client, username="reader")
    other = await create_user(client, username="other")
    await create_user(client, username="jake")
    await follow(client, reader, "jake")
    assert (await client.get("/api/profiles/jake", headers=other.headers)).json()["profile"][
        "following"
    ] is False
    assert (await client.get("/api/profiles/jake")).json()["profile"]["following"] is False


async def test_own_profile_is_not_followed(client: httpx.AsyncClient) -> None:
    jake = await create_user(client, username="jake")
    response = await client.get("/api/profiles/jake", headers=jake.headers)
    assert response.json()["profile"] == {"username": "jake", "bio": None, "image": None, "following": False}


async def test_unknown_profile_is_404_on_profile(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/profiles/nobody")
    assert response.status_code == 404
    assert list(response.json()["errors"]) == ["profile"]


async def test_profile_lookup_is_exact_on_the_username(client: httpx.AsyncClient) -> None:
    await create_user(client, username="Jake")
    assert (await client.get("/api/profiles/Jake")).json()["profile"]["username"] == "Jake"
    response = await client.get("/api/profiles/jake")
    assert response.status_code == 404
    assert list(response.json()["errors"]) == ["profile"]


async def test_follow_returns_the_profile_followed_and_stores_one_row(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    reader = await create_user(client, username="reader")
    await create_user(client, username="jake")
    response = await client.post("/api/profiles/jake/follow", headers=reader.headers)
    assert response.status_code == 200
    assert response.json() == {"profile": {"username": "jake", "bio": None, "image": None, "following": True}}
    assert await follows_of(db, reader) == ["jake"]


async def test_following_twice_is_idempotent(client: httpx.AsyncClient, db: AsyncSession) -> None:
    reader = await create_user(client, username="reader")
    await create_user(client, username="jake")
    first = await client.post("/api/profiles/jake/follow", headers=reader.headers)
    second = await client.post("/api/profiles/jake/follow", headers=reader.headers)
    assert second.status_code == 200
    assert second.json() == first.json()
    assert second.json()["profile"]["following"] is True
    assert await follows_of(db, reader) == ["jake"]


async def test_unfollow_returns_the_profile_unfollowed_and_removes_the_row(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    reader = await create_user(client, username="reader")
    await create_user(client, username="jake")
    await create_user(client, username="kept")
    await follow(client, reader, "jake")
    await follow(client, reader, "kept")
    response = await client.delete("/api/profiles/jake/follow", headers=reader.headers)
    assert response.status_code == 200
    assert response.json() == {
        "profile": {"username": "jake", "bio": None, "image": None, "following": False}
    }
    assert await follows_of(db, reader) == ["kept"]
    assert (await client.get("/api/profiles/jake", headers=reader.headers)).json()["profile"][
        "following"
    ] is False


async def test_unfollowing_twice_or_never_followed_is_idempotent(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    reader = await create_user(client, username="reader")
    await create_user(client, username="jake")
    never = await client.delete("/api/profiles/jake/follow", headers=reader.headers)
    assert never.status_code == 200
    assert never.json()["profile"]["following"] is False
    await follow(client, reader, "jake")
    await client.delete("/api/profiles/jake/follow", headers=reader.headers)
    again = await client.delete("/api/profiles/jake/follow", headers=reader.headers)
    assert again.status_code == 200
    assert again.json()["profile"]["following"] is False
    assert await follows_of(db, reader) == []


async def test_follow_does_not_make_the_followed_user_follow_back(client: httpx.AsyncClient) -> None:
    reader = await create_user(client, username="reader")
    jake = await create_user(client, username="jake")
    await follow(client, reader, "jake")
    response = await client.get("/api/profiles/reader", headers=jake.headers)
    assert response.json()["profile"]["following"] is False


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_follow_or_unfollow_of_an_unknown_user_is_404_on_profile(
    client: httpx.AsyncClient, db: AsyncSession, method: str
) -> None:
    reader = await create_user(client, username="reader")
    response = await client.request(method, "/api/profiles/nobody/follow", headers=reader.headers)
    assert response.status_code == 404
    assert list(response.json()["errors"]) == ["profile"]
    assert await follows_of(db, reader) == []


async def test_following_yourself_is_422_and_stores_nothing(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    jake = await create_user(client, username="jake")
    response = await client.post("/api/profiles/jake/follow", headers=jake.headers)
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["profile"]
    assert (await db.execute(select(func.count()).select_from(Follow))).scalar_one() == 0


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_follow_or_unfollow_without_a_token_is_401_missing(
    client: httpx.AsyncClient, db: AsyncSession, method: str
) -> None:
    await create_user(client, username="jake")
    response = await client.request(method, "/api/profiles/jake/follow")
    assert response.status_code == 401
    assert response.json() == {"errors": {"token": ["is missing"]}}
    assert (await db.execute(select(func.count()).select_from(Follow))).scalar_one() == 0


async def test_follow_of_an_unknown_user_without_a_token_is_401_not_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/profiles/nobody/follow")
    assert response.status_code == 401
    assert response.json() == {"errors": {"token": ["is missing"]}}
