"""What Conduit's public conformance suites expect where our reading of the spec had left room:
null where the spec's schema does not allow it, empty passwords, the failed login's answer, and
only web URLs for images."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from service.models import User
from tests.factories import PASSWORD, create_article, create_user

pytestmark = pytest.mark.anyio

INVALID = {"errors": {"credentials": ["invalid"]}}


@pytest.mark.parametrize("field", ["email", "username", "password"])
async def test_null_on_a_user_field_the_spec_does_not_let_be_null_is_422(
    client: httpx.AsyncClient, field: str
) -> None:
    jake = await create_user(client)
    response = await client.put("/api/user", json={"user": {field: None, "bio": "x"}}, headers=jake.headers)
    assert response.status_code == 422
    assert response.json() == {"errors": {field: ["can't be null"]}}
    me = (await client.get("/api/user", headers=jake.headers)).json()["user"]
    assert (me["username"], me["email"], me["bio"]) == (jake.username, jake.email, None)
    login = {"user": {"email": jake.email, "password": PASSWORD}}
    assert (await client.post("/api/users/login", json=login)).status_code == 200


@pytest.mark.parametrize("field", ["title", "description", "body", "tagList"])
async def test_null_on_an_article_field_is_422_and_changes_nothing(
    client: httpx.AsyncClient, field: str
) -> None:
    jake = await create_user(client)
    created = await create_article(client, jake, tags=["kept"])
    response = await client.put(
        f"/api/articles/{created['slug']}", json={"article": {field: None}}, headers=jake.headers
    )
    assert response.status_code == 422
    assert response.json() == {"errors": {field: ["can't be null"]}}
    assert (await client.get(f"/api/articles/{created['slug']}")).json()["article"] == created


async def test_fields_left_out_still_mean_unchanged(client: httpx.AsyncClient) -> None:
    jake = await create_user(client)
    response = await client.put("/api/user", json={"user": {"bio": "only this"}}, headers=jake.headers)
    assert response.status_code == 200
    assert (response.json()["user"]["username"], response.json()["user"]["bio"]) == (
        jake.username,
        "only this",
    )
    created = await create_article(client, jake, tags=["kept"])
    edited = await client.put(
        f"/api/articles/{created['slug']}", json={"article": {"body": "new"}}, headers=jake.headers
    )
    assert edited.status_code == 200
    assert {key: edited.json()["article"][key] for key in ("title", "tagList", "body")} == {
        "title": created["title"],
        "tagList": ["kept"],
        "body": "new",
    }


@pytest.mark.parametrize("password", ["", "   "])
async def test_an_empty_password_on_registration_is_422_cant_be_blank(
    client: httpx.AsyncClient, password: str
) -> None:
    user = {"username": "jake", "email": "jake@example.org", "password": password}
    response = await client.post("/api/users", json={"user": user})
    assert response.status_code == 422
    assert response.json() == {"errors": {"password": ["can't be blank"]}}


async def test_a_failed_login_is_401_credentials_invalid_whatever_the_reason(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    jake = await create_user(client)
    ghost = await create_user(client)
    await db.execute(update(User).where(User.username == ghost.username).values(is_active=False))
    await db.commit()
    attempts: list[tuple[str, str]] = [
        (jake.email, "not-the-password"),  # wrong password
        ("nobody@example.org", PASSWORD),  # unknown account
        (ghost.email, PASSWORD),  # deactivated: the same answer, so it confirms no password
    ]
    for email, password in attempts:
        login = await client.post("/api/users/login", json={"user": {"email": email, "password": password}})
        token = await client.post("/api/token", data={"username": email, "password": password})
        for response in (login, token):
            assert response.status_code == 401, (email, response.text)
            assert response.json() == INVALID


@pytest.mark.parametrize(
    "image",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
        "vbscript:msgbox",
        "ftp://example.org/me.png",
        "//example.org/me.png",
        "https://",
        "example.org/me.png",
        " https://example.org/me.png",
        "http://[::1",
    ],
)
async def test_an_image_that_is_not_an_http_or_https_url_is_422(
    client: httpx.AsyncClient, image: str
) -> None:
    jake = await create_user(client)
    response = await client.put("/api/user", json={"user": {"image": image}}, headers=jake.headers)
    assert response.status_code == 422
    assert response.json() == {"errors": {"image": ["must be an http or https URL"]}}
    assert (await client.get(f"/api/profiles/{jake.username}")).json()["profile"]["image"] is None


@pytest.mark.parametrize("image", ["https://example.org/me.png", "HTTP://example.org/a.jpg?size=2#x"])
async def test_an_http_or_https_image_is_stored(client: httpx.AsyncClient, image: str) -> None:
    jake = await create_user(client)
    response = await client.put("/api/user", json={"user": {"image": image}}, headers=jake.headers)
    assert response.status_code == 200
    assert response.json()["user"]["image"] == image


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    schemas: dict[str, Any] = document["components"]["schemas"]
    return dict(schemas[name]["properties"])


async def test_the_served_document_allows_null_only_where_the_spec_does(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    user = _schema(document, "UpdateUser")
    for field in ("email", "username", "password"):
        assert user[field]["type"] == "string", user[field]
        assert "anyOf" not in user[field], user[field]
    assert {"type": "null"} in user["bio"]["anyOf"]
    assert {"type": "null"} in user["image"]["anyOf"]
    article = _schema(document, "UpdateArticle")
    for field in ("title", "description", "body"):
        assert article[field]["type"] == "string", article[field]
        assert "anyOf" not in article[field], article[field]
    assert article["tagList"]["type"] == "array"
    # Every refusal an operation can answer is documented on it (schemathesis checks the rest).
    admin_patch = document["paths"]["/api/admin/users/{username}"]["patch"]["responses"]
    assert {"401", "403", "404", "409", "422"} <= set(admin_patch)
