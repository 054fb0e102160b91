"""The OAuth2 password flow at `/api/token`, which Swagger UI's Authorize button depends on."""

from __future__ import annotations

import httpx
import jwt
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.config import Settings
from service.models import User
from tests.factories import PASSWORD, create_user

pytestmark = pytest.mark.anyio


async def token(client: httpx.AsyncClient, **form: str) -> httpx.Response:
    # Swagger UI sends grant_type=password along with the credentials.
    return await client.post("/api/token", data={"grant_type": "password"} | form)


async def test_form_login_by_email_returns_an_oauth2_bearer_token(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    await create_user(client, username="jake", email="jake@example.org")
    response = await token(client, username="jake@example.org", password=PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.jwt_ttl_seconds
    claims = jwt.decode(body["access_token"], settings.secret_key, algorithms=[settings.jwt_algorithm])
    jake_id = (await db.execute(select(User.id).where(User.username == "jake"))).scalar_one()
    assert claims["sub"] == str(jake_id)


async def test_form_login_by_email_ignores_case(client: httpx.AsyncClient) -> None:
    await create_user(client, username="jake", email="jake@example.org")
    response = await token(client, username="Jake@Example.ORG", password=PASSWORD)
    assert response.status_code == 200
    assert response.json()["token_type"] == "bearer"


async def test_form_login_by_username_returns_a_token(client: httpx.AsyncClient) -> None:
    await create_user(client, username="jake", email="jake@example.org")
    response = await token(client, username="jake", password=PASSWORD)
    assert response.status_code == 200
    me = await client.get("/api/user", headers={"Authorization": f"Bearer {response.json()['access_token']}"})
    assert me.json()["user"]["email"] == "jake@example.org"


async def test_access_token_works_as_bearer_on_the_current_user(client: httpx.AsyncClient) -> None:
    await create_user(client, username="jake", email="jake@example.org")
    access_token = (await token(client, username="jake@example.org", password=PASSWORD)).json()[
        "access_token"
    ]
    response = await client.get("/api/user", headers={"Authorization": f"Bearer {access_token}"})
    assert response.status_code == 200
    assert response.json()["user"]["username"] == "jake"
    assert response.json()["user"]["token"] == access_token


async def test_wrong_password_is_401_on_credentials(client: httpx.AsyncClient) -> None:
    await create_user(client, username="jake", email="jake@example.org")
    response = await token(client, username="jake", password="not-the-password")
    assert response.status_code == 401
    assert list(response.json()["errors"]) == ["credentials"]
    assert "access_token" not in response.text


async def test_unknown_user_is_401_like_a_wrong_password(client: httpx.AsyncClient) -> None:
    await create_user(client, username="jake", email="jake@example.org")
    wrong = await token(client, username="jake", password="not-the-password")
    unknown = await token(client, username="nobody", password=PASSWORD)
    assert unknown.status_code == 401
    assert unknown.json() == wrong.json()


async def test_deactivated_user_gets_no_token(client: httpx.AsyncClient, db: AsyncSession) -> None:
    await create_user(client, username="jake", email="jake@example.org")
    await db.execute(update(User).where(User.username == "jake").values(is_active=False))
    await db.commit()
    response = await token(client, username="jake", password=PASSWORD)
    assert response.status_code == 401
    assert list(response.json()["errors"]) == ["credentials"]


async def test_missing_fields_are_422_naming_each_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/token", data={})
    assert response.status_code == 422
    assert response.json() == {"errors": {"username": ["can't be blank"], "password": ["can't be blank"]}}


async def test_missing_password_is_422_on_password(client: httpx.AsyncClient) -> None:
    await create_user(client, username="jake")
    response = await token(client, username="jake")
    assert response.status_code == 422
    assert response.json() == {"errors": {"password": ["can't be blank"]}}


async def test_openapi_declares_the_password_flow_at_api_token(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    oauth = [scheme for scheme in schemes.values() if scheme["type"] == "oauth2"]
    assert len(oauth) == 1
    assert oauth[0]["flows"]["password"]["tokenUrl"] == "/api/token"


async def test_openapi_token_endpoint_takes_a_form_with_username_and_password(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    body = document["paths"]["/api/token"]["post"]["requestBody"]["content"]
    assert list(body) == ["application/x-www-form-urlencoded"]
    ref = body["application/x-www-form-urlencoded"]["schema"]["$ref"].rsplit("/", 1)[-1]
    form = document["components"]["schemas"][ref]
    assert {"username", "password"} <= set(form["required"])


async def test_openapi_protected_operations_require_the_oauth2_scheme(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    name = next(
        key for key, scheme in document["components"]["securitySchemes"].items() if scheme["type"] == "oauth2"
    )
    for path, method in [
        ("/api/user", "get"),
        ("/api/user", "put"),
        ("/api/profiles/{username}/follow", "post"),
    ]:
        assert {name: []} in document["paths"][path][method]["security"], (path, method)
