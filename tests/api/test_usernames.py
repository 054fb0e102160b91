"""Usernames: unique in any case and shown as typed (`dupX` and `DUPX` both registered, and
profiles and follows became ambiguous), and never mistaken for someone else's email at
`/api/token` (a stranger who registered the username `victim@example.com` made the victim's
Authorize login fail)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.models import User
from tests.factories import PASSWORD, create_user

pytestmark = pytest.mark.anyio

TAKEN = {"errors": {"username": ["has already been taken"]}}


async def register(client: httpx.AsyncClient, username: str, email: str) -> httpx.Response:
    user = {"username": username, "email": email, "password": PASSWORD}
    return await client.post("/api/users", json={"user": user})


async def token(client: httpx.AsyncClient, login: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post(
        "/api/token", data={"grant_type": "password", "username": login, "password": password}
    )


async def whose(client: httpx.AsyncClient, response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    return str((await client.get("/api/user", headers=headers)).json()["user"]["email"])


async def legacy_user(db: AsyncSession, username: str, email: str, password_hash: str) -> None:
    """An account as the service registered it before `@` was refused in usernames."""
    await db.execute(
        insert(User).values(username=username, email=email, password_hash=password_hash, role="editor")
    )
    await db.commit()


async def password_hash_of(db: AsyncSession, username: str) -> str:
    return (await db.execute(select(User.password_hash).where(User.username == username))).scalar_one()


# Unique in any case, shown as typed


@pytest.mark.parametrize("variant", ["DUPX", "dupx", "DupX"])
async def test_a_case_variant_of_a_taken_username_is_409(client: httpx.AsyncClient, variant: str) -> None:
    first = await register(client, "dupX", "first@example.org")
    assert first.status_code == 201
    assert first.json()["user"]["username"] == "dupX"  # as typed
    response = await register(client, variant, "second@example.org")
    assert response.status_code == 409
    assert response.json() == TAKEN


async def test_a_rename_to_a_case_variant_of_another_user_is_409(client: httpx.AsyncClient) -> None:
    await create_user(client, username="jake")
    jane = await create_user(client, username="jane")
    response = await client.put("/api/user", json={"user": {"username": "JAKE"}}, headers=jane.headers)
    assert response.status_code == 409
    assert response.json() == TAKEN


async def test_a_user_may_change_the_case_of_their_own_name(client: httpx.AsyncClient) -> None:
    jake = await create_user(client, username="jake")
    response = await client.put("/api/user", json={"user": {"username": "Jake"}}, headers=jake.headers)
    assert response.status_code == 200
    assert response.json()["user"]["username"] == "Jake"
    assert (await client.get("/api/profiles/Jake")).json()["profile"]["username"] == "Jake"


async def test_profiles_are_found_by_the_name_as_stored(client: httpx.AsyncClient) -> None:
    # Exact, as Conduit links them: one name per user now, so an exact lookup is never ambiguous.
    await create_user(client, username="dupX")
    assert (await client.get("/api/profiles/dupX")).status_code == 200
    assert (await client.get("/api/profiles/DUPX")).status_code == 404


# `/api/token`: an identifier with `@` is an email first


async def test_a_username_that_is_someones_email_does_not_take_over_their_login(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await create_user(client, username="template")
    # The stranger came first, from before `@` was refused in usernames (today it is a 422).
    await legacy_user(
        db, "victim@example.com", "stranger@example.org", await password_hash_of(db, "template")
    )
    victim = await create_user(client, username="victim", email="victim@example.com")
    for _ in range(10):
        assert await whose(client, await token(client, "victim@example.com", victim.password)) == victim.email
        assert (
            await whose(client, await token(client, "VICTIM@example.com ", victim.password)) == victim.email
        )


async def test_a_username_with_an_at_still_logs_in_when_no_email_is_it(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await create_user(client, username="template")
    await legacy_user(db, "me@home", "me@example.org", await password_hash_of(db, "template"))
    assert await whose(client, await token(client, "me@home")) == "me@example.org"
    assert await whose(client, await token(client, "me@example.org")) == "me@example.org"


async def test_token_login_by_username_ignores_case(client: httpx.AsyncClient) -> None:
    await create_user(client, username="dupX", email="dup@example.org")
    assert await whose(client, await token(client, "DUPX")) == "dup@example.org"


async def test_a_new_username_with_an_at_is_422(client: httpx.AsyncClient) -> None:
    response = await register(client, "victim@example.com", "stranger@example.org")
    assert response.status_code == 422
    assert response.json() == {"errors": {"username": ["can't contain @"]}}
    jake = await create_user(client, username="jake")
    renamed = await client.put("/api/user", json={"user": {"username": "a@b"}}, headers=jake.headers)
    assert renamed.status_code == 422
    assert renamed.json() == {"errors": {"username": ["can't contain @"]}}


async def test_a_name_with_an_at_from_before_may_be_sent_back_unchanged(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    # Conduit's settings forms send the username with every change.
    await create_user(client, username="template")
    await legacy_user(db, "me@home", "me@example.org", await password_hash_of(db, "template"))
    access = (await token(client, "me@example.org")).json()["access_token"]
    response = await client.put(
        "/api/user",
        json={"user": {"username": "me@home", "bio": "still me"}},
        headers={"Authorization": f"Bearer {access}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["user"]["bio"] == "still me"
