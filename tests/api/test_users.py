"""Registration, login and the current user (`/api/users`, `/api/users/login`, `/api/user`) as Conduit clients use them."""

from __future__ import annotations

import httpx
import jwt
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.config import Settings
from service.models import User
from tests.factories import PASSWORD, Account, create_user

pytestmark = pytest.mark.anyio

TAKEN = ["has already been taken"]


async def register(
    client: httpx.AsyncClient, username: str, email: str, password: str = PASSWORD
) -> httpx.Response:
    return await client.post(
        "/api/users", json={"user": {"username": username, "email": email, "password": password}}
    )


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/users/login", json={"user": {"email": email, "password": password}})


async def put_user(client: httpx.AsyncClient, account: Account, **fields: object) -> httpx.Response:
    return await client.put("/api/user", json={"user": fields}, headers=account.headers)


async def stored(db: AsyncSession, username: str) -> User:
    db.expire_all()
    return (await db.execute(select(User).where(User.username == username))).scalar_one()


# Registration


async def test_register_returns_201_with_exactly_the_conduit_user_shape(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    response = await register(client, "Jacob", "jake@jake.jake", "jakejake")
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    user = response.json()["user"]
    assert set(response.json()) == {"user"}
    assert set(user) == {"email", "token", "username", "bio", "image"}
    assert user["email"] == "jake@jake.jake"
    assert user["username"] == "Jacob"
    assert user["bio"] is None
    assert user["image"] is None
    row = await stored(db, "Jacob")
    claims = jwt.decode(user["token"], settings.secret_key, algorithms=[settings.jwt_algorithm])
    assert claims["sub"] == str(row.id)
    assert claims["exp"] - claims["iat"] == settings.jwt_ttl_seconds


async def test_register_stores_the_email_lower_cased_and_trimmed(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    response = await register(client, "mixed", "  Mixed.Case@Example.ORG ")
    assert response.status_code == 201
    assert response.json()["user"]["email"] == "mixed.case@example.org"
    assert (await stored(db, "mixed")).email == "mixed.case@example.org"


async def test_register_token_authenticates_the_new_user(client: httpx.AsyncClient) -> None:
    token = (await register(client, "fresh", "fresh@example.org")).json()["user"]["token"]
    response = await client.get("/api/user", headers={"Authorization": f"Token {token}"})
    assert response.status_code == 200
    assert response.json()["user"]["username"] == "fresh"


async def test_register_with_a_taken_username_is_409_on_username(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await create_user(client, username="jake", email="jake@example.org")
    response = await register(client, "jake", "other@example.org")
    assert response.status_code == 409
    assert response.json() == {"errors": {"username": TAKEN}}
    assert (await db.execute(select(User).where(User.email == "other@example.org"))).all() == []


async def test_register_with_a_taken_email_is_409_on_email(client: httpx.AsyncClient) -> None:
    await create_user(client, username="jake", email="jake@example.org")
    response = await register(client, "jacob", "jake@example.org")
    assert response.status_code == 409
    assert response.json() == {"errors": {"email": TAKEN}}


async def test_register_with_a_taken_email_in_other_case_is_409_on_email(client: httpx.AsyncClient) -> None:
    await create_user(client, username="jake", email="jake@example.org")
    response = await register(client, "jacob", "JAKE@Example.org")
    assert response.status_code == 409
    assert response.json() == {"errors": {"email": TAKEN}}


async def test_register_with_both_taken_names_both_fields(client: httpx.AsyncClient) -> None:
    await create_user(client, username="jake", email="jake@example.org")
    response = await register(client, "jake", "jake@example.org")
    assert response.status_code == 409
    assert response.json() == {"errors": {"username": TAKEN, "email": TAKEN}}


async def test_register_without_fields_names_each_missing_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/users", json={"user": {}})
    assert response.status_code == 422
    assert response.json() == {
        "errors": {
            "username": ["can't be blank"],
            "email": ["can't be blank"],
            "password": ["can't be blank"],
        }
    }


# Login


async def test_login_returns_the_user_with_a_working_token(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await create_user(client, username="jake", email="jake@example.org")
    response = await login(client, "jake@example.org", PASSWORD)
    assert response.status_code == 200
    user = response.json()["user"]
    assert {k: v for k, v in user.items() if k != "token"} == {
        "email": "jake@example.org",
        "username": "jake",
        "bio": None,
        "image": None,
    }
    current = await client.get("/api/user", headers={"Authorization": f"Token {user['token']}"})
    assert current.json()["user"]["username"] == "jake"


async def test_login_accepts_the_email_in_any_case(client: httpx.AsyncClient) -> None:
    await create_user(client, username="jake", email="jake@example.org")
    response = await login(client, " JAKE@example.ORG", PASSWORD)
    assert response.status_code == 200
    assert response.json()["user"]["username"] == "jake"


async def test_login_with_a_wrong_password_is_401_on_credentials(client: httpx.AsyncClient) -> None:
    await create_user(client, username="jake", email="jake@example.org")
    response = await login(client, "jake@example.org", "not-the-password")
    assert response.status_code == 401
    assert list(response.json()["errors"]) == ["credentials"]
    assert "token" not in response.text


async def test_login_with_an_unknown_email_fails_exactly_like_a_wrong_password(
    client: httpx.AsyncClient,
) -> None:
    await create_user(client, username="jake", email="jake@example.org")
    wrong_password = await login(client, "jake@example.org", "not-the-password")
    unknown = await login(client, "nobody@example.org", PASSWORD)
    assert unknown.status_code == 401
    assert unknown.json() == wrong_password.json()


async def test_login_of_a_deactivated_user_is_401_on_credentials(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await create_user(client, username="jake", email="jake@example.org")
    await db.execute(update(User).where(User.username == "jake").values(is_active=False))
    await db.commit()
    response = await login(client, "jake@example.org", PASSWORD)
    assert response.status_code == 401
    assert list(response.json()["errors"]) == ["credentials"]


async def test_login_without_a_password_is_422_on_password(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/users/login", json={"user": {"email": "jake@example.org"}})
    assert response.status_code == 422
    assert response.json() == {"errors": {"password": ["can't be blank"]}}


# Current user


async def test_get_current_user_returns_the_caller_and_echoes_the_token(client: httpx.AsyncClient) -> None:
    jake = await create_user(client, username="jake", email="jake@example.org")
    response = await client.get("/api/user", headers=jake.headers)
    assert response.status_code == 200
    assert response.json() == {
        "user": {
            "email": "jake@example.org",
            "token": jake.token,
            "username": "jake",
            "bio": None,
            "image": None,
        }
    }


async def test_get_current_user_without_a_token_is_401_missing(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/user")
    assert response.status_code == 401
    assert response.json() == {"errors": {"token": ["is missing"]}}


async def test_put_current_user_without_a_token_is_401_and_changes_nothing(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/user", json={"user": {"bio": "sneaky"}})
    assert response.status_code == 401
    assert response.json() == {"errors": {"token": ["is missing"]}}


# Updating the current user


async def test_update_bio_is_returned_and_stored(client: httpx.AsyncClient, db: AsyncSession) -> None:
    jake = await create_user(client, username="jake")
    response = await put_user(client, jake, bio="I like to skateboard")
    assert response.status_code == 200
    assert response.json()["user"]["bio"] == "I like to skateboard"
    assert (await stored(db, "jake")).bio == "I like to skateboard"


async def test_update_image_is_returned_and_stored(client: httpx.AsyncClient, db: AsyncSession) -> None:
    jake = await create_user(client, username="jake")
    image = "https://i.stack.imgur.com/xHWG8.jpg"
    response = await put_user(client, jake, image=image)
    assert response.status_code == 200
    assert response.json()["user"]["image"] == image
    assert (await stored(db, "jake")).image == image


async def test_update_username_renames_the_user_and_the_profile(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    jake = await create_user(client, username="jake")
    response = await put_user(client, jake, username="jacob")
    assert response.status_code == 200
    assert response.json()["user"]["username"] == "jacob"
    assert (await stored(db, "jacob")).email == jake.email
    assert (await client.get("/api/profiles/jacob")).status_code == 200
    assert (await client.get("/api/profiles/jake")).status_code == 404


async def test_update_email_is_lower_cased_and_trimmed(client: httpx.AsyncClient, db: AsyncSession) -> None:
    jake = await create_user(client, username="jake")
    response = await put_user(client, jake, email="  Jake.New@Example.ORG ")
    assert response.status_code == 200
    assert response.json()["user"]["email"] == "jake.new@example.org"
    assert (await stored(db, "jake")).email == "jake.new@example.org"


async def test_update_leaves_fields_that_are_not_sent_unchanged(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    jake = await create_user(client, username="jake")
    await put_user(client, jake, bio="first", image="https://example.org/a.png")
    response = await put_user(client, jake, bio="second")
    assert response.json()["user"] == {
        "email": jake.email,
        "token": jake.token,
        "username": "jake",
        "bio": "second",
        "image": "https://example.org/a.png",
    }
    assert (await stored(db, "jake")).image == "https://example.org/a.png"


@pytest.mark.parametrize("field", ["bio", "image"])
async def test_update_with_an_empty_string_clears_the_field_to_null(
    client: httpx.AsyncClient, db: AsyncSession, field: str
) -> None:
    jake = await create_user(client, username="jake")
    await put_user(client, jake, **{field: "https://example.org/set.png"})
    response = await put_user(client, jake, **{field: ""})
    assert response.status_code == 200
    assert response.json()["user"][field] is None
    assert getattr(await stored(db, "jake"), field) is None
    profile = (await client.get("/api/profiles/jake")).json()["profile"]
    assert profile[field] is None


@pytest.mark.parametrize("field", ["bio", "image"])
async def test_update_with_null_clears_the_field(
    client: httpx.AsyncClient, db: AsyncSession, field: str
) -> None:
    jake = await create_user(client, username="jake")
    await put_user(client, jake, **{field: "https://example.org/set.png"})
    response = await put_user(client, jake, **{field: None})
    assert response.status_code == 200
    assert response.json()["user"][field] is None
    assert getattr(await stored(db, "jake"), field) is None


@pytest.mark.parametrize(("field", "maximum"), [("bio", 2000), ("image", 2048)])
async def test_update_with_a_too_long_bio_or_image_is_422_and_stores_nothing(
    client: httpx.AsyncClient, db: AsyncSession, field: str, maximum: int
) -> None:
    jake = await create_user(client, username="jake")
    response = await put_user(client, jake, **{field: "x" * (maximum + 1)})
    assert response.status_code == 422
    assert response.json() == {"errors": {field: [f"is too long (maximum is {maximum} characters)"]}}
    assert getattr(await stored(db, "jake"), field) is None


async def test_update_to_a_taken_username_is_409_on_username(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await create_user(client, username="taken")
    jake = await create_user(client, username="jake")
    response = await put_user(client, jake, username="taken")
    assert response.status_code == 409
    assert response.json() == {"errors": {"username": TAKEN}}
    assert (await stored(db, "jake")).username == "jake"


async def test_update_to_a_taken_email_in_any_case_is_409_on_email(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await create_user(client, username="other", email="taken@example.org")
    jake = await create_user(client, username="jake", email="jake@example.org")
    response = await put_user(client, jake, email="Taken@Example.org")
    assert response.status_code == 409
    assert response.json() == {"errors": {"email": TAKEN}}
    assert (await stored(db, "jake")).email == "jake@example.org"


async def test_update_to_ones_own_username_and_email_is_not_a_conflict(client: httpx.AsyncClient) -> None:
    jake = await create_user(client, username="jake", email="jake@example.org")
    response = await put_user(client, jake, username="jake", email="JAKE@example.org", bio="same me")
    assert response.status_code == 200
    assert response.json()["user"]["email"] == "jake@example.org"
    assert response.json()["user"]["bio"] == "same me"


async def test_update_rejected_by_a_conflict_changes_no_other_field(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await create_user(client, username="taken")
    jake = await create_user(client, username="jake")
    response = await put_user(client, jake, username="taken", bio="should not stick")
    assert response.status_code == 409
    assert (await stored(db, "jake")).bio is None


async def test_password_change_lets_the_new_password_log_in_and_not_the_old(
    client: httpx.AsyncClient,
) -> None:
    jake = await create_user(client, username="jake", email="jake@example.org")
    response = await put_user(client, jake, password="a-brand-new-password")
    assert response.status_code == 200
    new_login = await login(client, "jake@example.org", "a-brand-new-password")
    assert new_login.status_code == 200
    assert new_login.json()["user"]["username"] == "jake"
    old_login = await login(client, "jake@example.org", PASSWORD)
    assert old_login.status_code == 401
    assert list(old_login.json()["errors"]) == ["credentials"]


async def test_update_with_a_too_short_password_is_422_and_keeps_the_old_one(
    client: httpx.AsyncClient,
) -> None:
    jake = await create_user(client, username="jake", email="jake@example.org")
    response = await put_user(client, jake, password="short")
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["password"]
    assert (await login(client, "jake@example.org", PASSWORD)).status_code == 200


async def test_update_with_an_empty_password_is_422_and_keeps_the_old_one(client: httpx.AsyncClient) -> None:
    # An empty string used to mean "unchanged"; Conduit's conformance suites expect a refusal.
    jake = await create_user(client, username="jake", email="jake@example.org")
    response = await put_user(client, jake, password="", bio="not saved")
    assert response.status_code == 422
    assert response.json() == {"errors": {"password": ["can't be blank"]}}
    assert (await client.get("/api/profiles/jake")).json()["profile"]["bio"] is None
    assert (await login(client, "jake@example.org", PASSWORD)).status_code == 200


async def test_token_returned_by_an_update_authenticates_the_updated_user(client: httpx.AsyncClient) -> None:
    jake = await create_user(client, username="jake")
    updated = (await put_user(client, jake, username="jacob", password="another-password")).json()["user"]
    response = await client.get("/api/user", headers={"Authorization": f"Token {updated['token']}"})
    assert response.status_code == 200
    assert response.json()["user"]["username"] == "jacob"
