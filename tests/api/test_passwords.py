"""Passwords are stored only as Argon2id hashes, and neither a password nor its hash ever leaves the server."""

from __future__ import annotations

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.models import User
from tests.factories import PASSWORD, create_user

pytestmark = pytest.mark.anyio

SECRET = "Sup3r-Secret-Passw0rd!"
NEW_SECRET = "An0ther-Secret-Passw0rd?"


async def stored_hash(db: AsyncSession, username: str) -> str:
    db.expire_all()
    return (await db.execute(select(User.password_hash).where(User.username == username))).scalar_one()


async def test_registration_stores_an_argon2id_hash_of_the_password(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await create_user(client, username="jake", password=SECRET)
    password_hash = await stored_hash(db, "jake")
    assert password_hash.startswith("$argon2id$")
    assert SECRET not in password_hash
    assert PasswordHasher().verify(password_hash, SECRET)


async def test_the_same_password_gets_a_different_salted_hash_per_user(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await create_user(client, username="jake", password=SECRET)
    await create_user(client, username="jane", password=SECRET)
    assert await stored_hash(db, "jake") != await stored_hash(db, "jane")


async def test_password_change_stores_a_new_argon2id_hash(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    jake = await create_user(client, username="jake", password=SECRET)
    before = await stored_hash(db, "jake")
    response = await client.put("/api/user", json={"user": {"password": NEW_SECRET}}, headers=jake.headers)
    assert response.status_code == 200
    after = await stored_hash(db, "jake")
    assert after != before
    assert after.startswith("$argon2id$")
    assert PasswordHasher().verify(after, NEW_SECRET)


async def test_updating_other_fields_keeps_the_password_hash(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    jake = await create_user(client, username="jake", password=SECRET)
    before = await stored_hash(db, "jake")
    await client.put(
        "/api/user", json={"user": {"bio": "new bio", "username": "jacob"}}, headers=jake.headers
    )
    assert await stored_hash(db, "jacob") == before


async def test_no_response_contains_the_password_or_its_hash(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    email = "jake@example.org"
    responses: list[httpx.Response] = []
    registered = await client.post(
        "/api/users", json={"user": {"username": "jake", "email": email, "password": SECRET}}
    )
    responses.append(registered)
    token = registered.json()["user"]["token"]
    headers = {"Authorization": f"Token {token}"}
    password_hash = await stored_hash(db, "jake")

    responses += [
        await client.post("/api/users/login", json={"user": {"email": email, "password": SECRET}}),
        await client.post("/api/users/login", json={"user": {"email": email, "password": SECRET + "x"}}),
        await client.post("/api/token", data={"username": "jake", "password": SECRET}),
        await client.post("/api/token", data={"username": "jake", "password": SECRET + "x"}),
        await client.get("/api/user", headers=headers),
        await client.get("/api/profiles/jake"),
        await client.put("/api/user", json={"user": {"password": NEW_SECRET}}, headers=headers),
        # Rejected inputs must not be echoed back in validation errors either.
        await client.put("/api/user", json={"user": {"password": "short"}}, headers=headers),
        await client.put("/api/user", json={"user": {"password": SECRET * 20}}, headers=headers),
        await client.post(
            "/api/users", json={"user": {"username": "jake", "email": email, "password": SECRET}}
        ),
        await client.post("/api/users", json={"user": {"username": "", "email": "bad", "password": SECRET}}),
        await client.post("/api/users/login", json={"user": {"email": email, "password": ["not", SECRET]}}),
    ]
    assert [r.status_code for r in responses] == [
        201,
        200,
        401,
        200,
        401,
        200,
        200,
        200,
        422,
        422,
        409,
        422,
        422,
    ]
    for response in responses:
        text = response.text
        for secret in (SECRET, NEW_SECRET, password_hash, "$argon2"):
            assert secret not in text, (response.request.method, response.request.url.path, text)
        assert "password_hash" not in text
        assert "passwordHash" not in text


async def test_user_and_profile_bodies_have_no_password_field(client: httpx.AsyncClient) -> None:
    jake = await create_user(client, username="jake", password=PASSWORD)
    user = (await client.get("/api/user", headers=jake.headers)).json()["user"]
    profile = (await client.get("/api/profiles/jake")).json()["profile"]
    assert not any("password" in key.lower() for key in user)
    assert not any("password" in key.lower() for key in profile)
