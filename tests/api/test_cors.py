"""Browsers on another origin can call the API, read its errors too, and only configured origins are let in."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.api.conftest import ClientFactory
from tests.factories import create_user

pytestmark = pytest.mark.anyio

APP_ORIGIN = "https://app.example"
OTHER_ORIGIN = "https://evil.example"
JSON = "application/json; charset=utf-8"


def header_set(response: httpx.Response, name: str) -> set[str]:
    return {item.strip().lower() for item in response.headers.get(name, "").split(",") if item.strip()}


async def preflight(
    client: httpx.AsyncClient, origin: str, method: str = "POST", path: str = "/api/articles"
) -> httpx.Response:
    return await client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/articles"),
        ("PUT", "/api/articles/a-slug"),
        ("DELETE", "/api/articles/a-slug/comments/1"),
        ("PATCH", "/api/admin/users/someone"),
        ("GET", "/api/user"),
    ],
)
async def test_preflight_from_any_origin_is_allowed_by_default_with_auth_and_json_headers(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await preflight(client, APP_ORIGIN, method, path)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert {"authorization", "content-type"} <= header_set(response, "access-control-allow-headers")
    assert method.lower() in header_set(response, "access-control-allow-methods")
    assert int(response.headers["access-control-max-age"]) > 0
    # A wildcard origin must never be combined with credentials (the Fetch standard refuses it).
    assert "access-control-allow-credentials" not in response.headers


async def test_simple_get_carries_the_allow_origin_header(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/tags", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 200
    assert response.json() == {"tags": []}
    assert response.headers["access-control-allow-origin"] == "*"
    assert "x-request-id" in header_set(response, "access-control-expose-headers")


async def test_request_without_origin_gets_no_cors_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/tags")
    assert response.status_code == 200
    assert not [name for name in response.headers if name.lower().startswith("access-control-")]


async def test_configured_origin_is_echoed_with_credentials(make_client: ClientFactory) -> None:
    async with make_client(cors_origins=[APP_ORIGIN]) as client:
        allowed = await preflight(client, APP_ORIGIN)
        simple = await client.get("/api/tags", headers={"Origin": APP_ORIGIN})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == APP_ORIGIN
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert {"authorization", "content-type"} <= header_set(allowed, "access-control-allow-headers")
    assert simple.headers["access-control-allow-origin"] == APP_ORIGIN
    # Caches must keep one copy per origin once the answer depends on it.
    assert "origin" in header_set(simple, "vary")


async def test_configured_origins_refuse_every_other_origin(make_client: ClientFactory) -> None:
    async with make_client(cors_origins=[APP_ORIGIN]) as client:
        refused = await preflight(client, OTHER_ORIGIN)
        simple = await client.get("/api/tags", headers={"Origin": OTHER_ORIGIN})
        lookalike = await client.get("/api/tags", headers={"Origin": APP_ORIGIN + ".evil.example"})
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    # The server still answers; it is the browser that withholds the response from the page.
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers
    assert "access-control-allow-origin" not in lookalike.headers


async def test_origins_from_a_comma_separated_setting_are_each_allowed(make_client: ClientFactory) -> None:
    async with make_client(cors_origins="https://a.example, https://b.example") as client:
        a = await client.get("/api/tags", headers={"Origin": "https://a.example"})
        b = await preflight(client, "https://b.example")
        c = await client.get("/api/tags", headers={"Origin": "https://c.example"})
    assert a.headers["access-control-allow-origin"] == "https://a.example"
    assert b.headers["access-control-allow-origin"] == "https://b.example"
    assert "access-control-allow-origin" not in c.headers


async def test_preflight_asking_for_an_unlisted_header_is_refused(make_client: ClientFactory) -> None:
    async with make_client(cors_origins=[APP_ORIGIN]) as client:
        response = await client.options(
            "/api/articles",
            headers={
                "Origin": APP_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-not-allowed",
            },
        )
    assert response.status_code == 400
    assert "x-not-allowed" not in header_set(response, "access-control-allow-headers")


async def test_413_error_carries_cors_headers(make_client: ClientFactory) -> None:
    async with make_client(cors_origins=[APP_ORIGIN], max_body_bytes=1024) as client:
        response = await client.post(
            "/api/users",
            content=b'{"user": {"username": "' + b"u" * 2000 + b'"}}',
            headers={"Origin": APP_ORIGIN, "Content-Type": "application/json"},
        )
    assert response.status_code == 413
    assert response.headers["content-type"] == JSON
    assert list(response.json()["errors"]) == ["body"]
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"


async def test_chunked_413_error_carries_cors_headers(make_client: ClientFactory) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b'{"user": {"username": "'
        for _ in range(20):
            yield b"u" * 100
        yield b'"}}'

    async with make_client(cors_origins=[APP_ORIGIN], max_body_bytes=1024) as client:
        response = await client.post(
            "/api/users", content=body(), headers={"Origin": APP_ORIGIN, "Content-Type": "application/json"}
        )
    assert response.status_code == 413
    assert list(response.json()["errors"]) == ["body"]
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN


@pytest.mark.parametrize(
    ("headers", "message"),
    [({}, "is missing"), ({"Authorization": "Token not-a-jwt"}, "is invalid or expired")],
)
async def test_401_error_carries_cors_headers(
    make_client: ClientFactory, headers: dict[str, str], message: str
) -> None:
    async with make_client(cors_origins=[APP_ORIGIN]) as client:
        response = await client.get("/api/user", headers={"Origin": APP_ORIGIN} | headers)
    assert response.status_code == 401
    assert response.json() == {"errors": {"token": [message]}}
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN


async def test_403_404_and_422_errors_carry_cors_headers(
    make_client: ClientFactory, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    viewer = await create_user(client, role="viewer", db=db)
    async with make_client(cors_origins=[APP_ORIGIN]) as cors_client:
        origin = {"Origin": APP_ORIGIN}
        forbidden = await cors_client.get("/api/admin/users", headers=origin | viewer.headers)
        missing = await cors_client.get("/api/articles/no-such-article", headers=origin)
        unknown = await cors_client.get("/api/no-such-route", headers=origin)
        invalid = await cors_client.get("/api/articles", params={"limit": 0}, headers=origin)
    assert [r.status_code for r in (forbidden, missing, unknown, invalid)] == [403, 404, 404, 422]
    assert [list(r.json()["errors"]) for r in (forbidden, missing, unknown, invalid)] == [
        ["role"],
        ["article"],
        ["path"],
        ["limit"],
    ]
    assert {r.headers.get("access-control-allow-origin") for r in (forbidden, missing, unknown, invalid)} == {
        APP_ORIGIN
    }
