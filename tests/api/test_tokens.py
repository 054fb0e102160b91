"""Only well-formed, correctly signed, unexpired JWTs of an active user authenticate; everything else is 401 "token"."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.config import Settings
from service.models import User
from tests.factories import Account, create_user

pytestmark = pytest.mark.anyio

INVALID = {"errors": {"token": ["is invalid or expired"]}}


async def user_id(db: AsyncSession, account: Account) -> int:
    return (await db.execute(select(User.id).where(User.username == account.username))).scalar_one()


def claims_for(uid: int, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": str(uid), "iat": now, "exp": now + 3600} | overrides
    return {key: value for key, value in claims.items() if value is not None}


def sign(
    settings: Settings, claims: dict[str, Any], *, key: str | None = None, algorithm: str | None = None
) -> str:
    return jwt.encode(claims, key or settings.secret_key, algorithm=algorithm or settings.jwt_algorithm)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def current_user(client: httpx.AsyncClient, authorization: str) -> httpx.Response:
    return await client.get("/api/user", headers={"Authorization": authorization})


async def test_a_token_built_from_the_configured_secret_authenticates(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    jake = await create_user(client, username="jake")
    token = sign(settings, claims_for(await user_id(db, jake)))
    response = await current_user(client, f"Token {token}")
    assert response.status_code == 200
    assert response.json()["user"]["username"] == "jake"


@pytest.mark.parametrize("scheme", ["Token", "Bearer", "token", "bearer", "TOKEN", "BeArEr"])
async def test_token_and_bearer_schemes_are_accepted_in_any_case(
    client: httpx.AsyncClient, scheme: str
) -> None:
    jake = await create_user(client, username="jake")
    response = await current_user(client, f"{scheme} {jake.token}")
    assert response.status_code == 200
    assert response.json()["user"]["username"] == "jake"
    assert response.json()["user"]["token"] == jake.token


async def test_alg_none_token_is_rejected(client: httpx.AsyncClient, db: AsyncSession) -> None:
    jake = await create_user(client, username="jake")
    header = b64({"alg": "none", "typ": "JWT"})
    payload = b64(claims_for(await user_id(db, jake)))
    for token in (f"{header}.{payload}.", f"{header}.{payload}"):
        response = await current_user(client, f"Token {token}")
        assert response.status_code == 401
        assert response.json() == INVALID


async def test_token_signed_with_another_secret_is_rejected(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    jake = await create_user(client, username="jake")
    token = sign(
        settings, claims_for(await user_id(db, jake)), key="another-secret-that-is-long-enough-for-hs256-xyz"
    )
    response = await current_user(client, f"Token {token}")
    assert response.status_code == 401
    assert response.json() == INVALID


async def test_token_with_a_tampered_payload_is_rejected(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    jake = await create_user(client, username="jake")
    other = await create_user(client, username="other")
    header, _payload, signature = sign(settings, claims_for(await user_id(db, jake))).split(".")
    forged = f"{header}.{b64(claims_for(await user_id(db, other)))}.{signature}"
    response = await current_user(client, f"Token {forged}")
    assert response.status_code == 401
    assert response.json() == INVALID


# The test secret is short for HS512; that is beside the point here.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_token_signed_with_another_algorithm_is_rejected(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    assert settings.jwt_algorithm == "HS256"
    jake = await create_user(client, username="jake")
    token = sign(settings, claims_for(await user_id(db, jake)), algorithm="HS512")
    response = await current_user(client, f"Token {token}")
    assert response.status_code == 401
    assert response.json() == INVALID


async def test_token_without_sub_is_rejected(client: httpx.AsyncClient, settings: Settings) -> None:
    token = sign(settings, claims_for(1, sub=None))
    response = await current_user(client, f"Token {token}")
    assert response.status_code == 401
    assert response.json() == INVALID


@pytest.mark.parametrize("sub", ["jake", "1.5", "", "-1", "0", "99999999999999999999"])
async def test_token_whose_sub_is_not_a_user_id_is_rejected(
    client: httpx.AsyncClient, settings: Settings, sub: str
) -> None:
    await create_user(client, username="jake")
    token = sign(settings, claims_for(1, sub=sub))
    response = await current_user(client, f"Token {token}")
    assert response.status_code == 401
    assert response.json() == INVALID


async def test_token_of_a_user_id_that_does_not_exist_is_rejected(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    jake = await create_user(client, username="jake")
    token = sign(settings, claims_for(await user_id(db, jake) + 1000))
    response = await current_user(client, f"Token {token}")
    assert response.status_code == 401
    assert response.json() == INVALID


async def test_expired_token_is_rejected(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    jake = await create_user(client, username="jake")
    now = int(time.time())
    token = sign(settings, claims_for(await user_id(db, jake), iat=now - 7200, exp=now - 60))
    response = await current_user(client, f"Token {token}")
    assert response.status_code == 401
    assert response.json() == INVALID


async def test_a_token_that_worked_is_rejected_once_it_expires(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Verified tokens are remembered (service.auth.security); their expiry is checked on every use.
    jake = await create_user(client, username="jake")
    now = int(time.time())
    token = sign(settings, claims_for(await user_id(db, jake), iat=now - 10, exp=now + 30))
    assert (await current_user(client, f"Token {token}")).status_code == 200
    assert (await current_user(client, f"Token {token}")).status_code == 200
    monkeypatch.setattr(time, "time", lambda: now + 30.5)
    response = await current_user(client, f"Token {token}")
    assert response.status_code == 401
    assert response.json() == INVALID


async def test_token_without_exp_is_rejected(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    jake = await create_user(client, username="jake")
    token = sign(settings, claims_for(await user_id(db, jake), exp=None))
    response = await current_user(client, f"Token {token}")
    assert response.status_code == 401
    assert response.json() == INVALID


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "e30.e30.e30", "....", "Token", "x" * 5000])
async def test_garbage_token_is_rejected(client: httpx.AsyncClient, token: str) -> None:
    response = await current_user(client, f"Token {token}")
    assert response.status_code == 401
    assert list(response.json()["errors"]) == ["token"]


@pytest.mark.parametrize("authorization", ["Token", "Token ", "Bearer", "Bearer    "])
async def test_scheme_without_credentials_is_rejected_as_malformed(
    client: httpx.AsyncClient, authorization: str
) -> None:
    response = await current_user(client, authorization)
    assert response.status_code == 401
    errors = response.json()["errors"]
    assert list(errors) == ["token"]
    assert "malformed" in errors["token"][0]


@pytest.mark.parametrize("scheme", ["Basic", "JWT", "Bearer:", "Tokens"])
async def test_unknown_scheme_is_rejected_as_malformed(client: httpx.AsyncClient, scheme: str) -> None:
    jake = await create_user(client, username="jake")
    response = await current_user(client, f"{scheme} {jake.token}")
    assert response.status_code == 401
    errors = response.json()["errors"]
    assert list(errors) == ["token"]
    assert "malformed" in errors["token"][0]


async def test_bare_token_without_a_scheme_is_rejected(client: httpx.AsyncClient) -> None:
    jake = await create_user(client, username="jake")
    response = await current_user(client, jake.token)
    assert response.status_code == 401
    assert list(response.json()["errors"]) == ["token"]


async def test_unauthorised_response_advertises_the_token_scheme(client: httpx.AsyncClient) -> None:
    response = await current_user(client, "Token garbage")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].split()[0] == "Token"


async def test_invalid_token_on_an_optional_auth_endpoint_is_401_not_anonymous(
    client: httpx.AsyncClient,
) -> None:
    await create_user(client, username="jake")
    response = await client.get("/api/profiles/jake", headers={"Authorization": "Token garbage"})
    assert response.status_code == 401
    assert response.json() == INVALID


async def test_token_of_a_deleted_user_is_rejected(client: httpx.AsyncClient, db: AsyncSession) -> None:
    jake = await create_user(client, username="jake")
    assert (await current_user(client, f"Token {jake.token}")).status_code == 200
    await db.execute(delete(User).where(User.username == "jake"))
    await db.commit()
    response = await current_user(client, f"Token {jake.token}")
    assert response.status_code == 401
    assert response.json() == INVALID


async def test_token_of_a_deactivated_user_is_rejected_at_once(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    jake = await create_user(client, username="jake")
    assert (await current_user(client, f"Token {jake.token}")).status_code == 200
    await db.execute(update(User).where(User.username == "jake").values(is_active=False))
    await db.commit()
    response = await current_user(client, f"Token {jake.token}")
    assert response.status_code == 401
    assert response.json() == INVALID
    follow = await client.post("/api/profiles/jake/follow", headers=jake.headers)
    assert follow.status_code == 401


async def test_token_of_a_reactivated_user_works_again(client: httpx.AsyncClient, db: AsyncSession) -> None:
    jake = await create_user(client, username="jake")
    await db.execute(update(User).where(User.username == "jake").values(is_active=False))
    await db.commit()
    assert (await current_user(client, f"Token {jake.token}")).status_code == 401
    await db.execute(update(User).where(User.username == "jake").values(is_active=True))
    await db.commit()
    response = await current_user(client, f"Token {jake.token}")
    assert response.status_code == 200
    assert response.json()["user"]["username"] == "jake"
