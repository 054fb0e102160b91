"""Whatever a client sends, a bad request gets a Conduit error naming what is wrong, never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.main import create_app
from tests.conftest import on_test_transaction
from tests.conftest import test_settings as make_settings
from tests.factories import Account, create_article, create_user
from tests.support.asgi import asgi_client

pytestmark = pytest.mark.anyio

JSON = "application/json; charset=utf-8"
BLANK = "can't be blank"


def assert_error(response: httpx.Response, status: int, errors: dict[str, list[str]] | set[str]) -> None:
    """The response is `status` in the Conduit format: JSON, one top-level key, lists of messages."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSON
    document = response.json()
    assert list(document) == ["errors"]
    assert document["errors"], "an error must name at least one field"
    for messages in document["errors"].values():
        assert isinstance(messages, list)
        assert messages
        assert all(isinstance(m, str) and m for m in messages)
    if isinstance(errors, set):
        assert set(document["errors"]) == errors
    else:
        assert document["errors"] == errors


@dataclass
class Endpoint:
    method: str
    path: str
    headers: dict[str, str]
    wrapper: str
    valid: dict[str, Any]
    required: tuple[str, ...]

    async def send(self, client: httpx.AsyncClient, **kwargs: Any) -> httpx.Response:
        return await client.request(
            self.method, self.path, headers=self.headers | kwargs.pop("headers", {}), **kwargs
        )

    async def send_fields(self, client: httpx.AsyncClient, **fields: Any) -> httpx.Response:
        return await self.send(client, json={self.wrapper: self.valid | fields})


@dataclass
class World:
    author: Account
    admin: Account
    slug: str
    endpoints: dict[str, Endpoint]


@pytest.fixture
async def world(client: httpx.AsyncClient, db: AsyncSession) -> World:
    author = await create_user(client, username="author", role="editor", db=db)
    admin = await create_user(client, username="admin", role="admin", db=db)
    article = await create_article(
        client, author, title="Kept", description="Kept d", body="Kept b", tags=["x"]
    )
    slug = article["slug"]
    endpoints = {
        "register": Endpoint(
            "POST",
            "/api/users",
            {},
            "user",
            {"username": "newbie", "email": "newbie@example.org", "password": "long-enough-password"},
            ("username", "email", "password"),
        ),
        "login": Endpoint(
            "POST",
            "/api/users/login",
            {},
            "user",
            {"email": author.email, "password": author.password},
            ("email", "password"),
        ),
        "update user": Endpoint("PUT", "/api/user", author.headers, "user", {"bio": "new bio"}, ()),
        "create article": Endpoint(
            "POST",
            "/api/articles",
            author.headers,
            "article",
            {"title": "New", "description": "New d", "body": "New b", "tagList": ["y"]},
            ("title", "description", "body"),
        ),
        "update article": Endpoint(
            "PUT", f"/api/articles/{slug}", author.headers, "article", {"description": "Changed d"}, ()
        ),
        "comment": Endpoint(
            "POST", f"/api/articles/{slug}/comments", author.headers, "comment", {"body": "Hi"}, ("body",)
        ),
        "admin update user": Endpoint(
            "PATCH", "/api/admin/users/author", admin.headers, "user", {"role": "viewer"}, ()
        ),
    }
    return World(author=author, admin=admin, slug=slug, endpoints=endpoints)


STATE_QUERIES = (
    "SELECT username, email, password_hash, role, is_active, bio, image FROM users ORDER BY id",
    "SELECT slug, title, description, body FROM articles ORDER BY id",
    "SELECT article_id, tag_id, position FROM article_tags ORDER BY article_id, position",
    "SELECT article_id, author_id, body FROM comments ORDER BY id",
)


async def state(db: AsyncSession) -> list[list[tuple[Any, ...]]]:
    return [[tuple(row) for row in (await db.execute(text(query))).all()] for query in STATE_QUERIES]


ENDPOINTS = [
    "register",
    "login",
    "update user",
    "create article",
    "update article",
    "comment",
    "admin update user",
]
WITH_REQUIRED = ["register", "login", "create article", "comment"]


async def test_each_endpoint_accepts_its_valid_payload(client: httpx.AsyncClient, world: World) -> None:
    # The baseline the tests below spoil one part at a time: without it they could pass for the wrong reason.
    statuses = {name: (await world.endpoints[name].send_fields(client)).status_code for name in ENDPOINTS}
    assert statuses == {
        "register": 201,
        "login": 200,
        "update user": 200,
        "create article": 201,
        "update article": 200,
        "comment": 201,
        "admin update user": 200,
    }


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("content", [b'{"user": {', b"{'user': {}}", b"not json", b'{"a": 1,}', b"\xff\xfe"])
async def test_malformed_json_is_422_body(
    client: httpx.AsyncClient, db: AsyncSession, world: World, endpoint: str, content: bytes
) -> None:
    before = await state(db)
    response = await world.endpoints[endpoint].send(
        client, content=content, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 422, {"body"})
    assert await state(db) == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("document", [[], ["user"], "user", 42, True, None])
async def test_json_that_is_not_an_object_is_422_body(
    client: httpx.AsyncClient, db: AsyncSession, world: World, endpoint: str, document: Any
) -> None:
    before = await state(db)
    response = await world.endpoints[endpoint].send(client, json=document)
    assert_error(response, 422, {"body"})
    assert await state(db) == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_empty_body_is_422_body(client: httpx.AsyncClient, world: World, endpoint: str) -> None:
    response = await world.endpoints[endpoint].send(client, headers={"Content-Type": "application/json"})
    assert_error(response, 422, {"body"})


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_missing_wrapper_key_is_422_naming_it(
    client: httpx.AsyncClient, db: AsyncSession, world: World, endpoint: str
) -> None:
    spec = world.endpoints[endpoint]
    before = await state(db)
    for document in ({}, {"data": spec.valid}, {spec.wrapper.upper(): spec.valid}):
        assert_error(await spec.send(client, json=document), 422, {spec.wrapper: [BLANK]})
    assert await state(db) == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("inner", [[], "text", 7, None])
async def test_wrapper_that_is_not_an_object_is_422_naming_it(
    client: httpx.AsyncClient, world: World, endpoint: str, inner: Any
) -> None:
    spec = world.endpoints[endpoint]
    response = await spec.send(client, json={spec.wrapper: inner})
    assert_error(response, 422, {spec.wrapper})


@pytest.mark.parametrize("endpoint", WITH_REQUIRED)
async def test_missing_required_fields_are_each_named_cant_be_blank(
    client: httpx.AsyncClient, db: AsyncSession, world: World, endpoint: str
) -> None:
    spec = world.endpoints[endpoint]
    before = await state(db)
    assert_error(
        await spec.send(client, json={spec.wrapper: {}}), 422, {key: [BLANK] for key in spec.required}
    )
    for field in spec.required:
        partial = {key: value for key, value in spec.valid.items() if key != field}
        assert_error(await spec.send(client, json={spec.wrapper: partial}), 422, {field: [BLANK]})
    assert await state(db) == before


WRONG_TYPES = [
    ("register", "username", 42, "must be a string"),
    ("register", "email", ["a@b.c"], "must be a string"),
    ("register", "password", 12345678, "must be a string"),
    ("login", "email", 1, "must be a string"),
    ("login", "password", {"x": 1}, "must be a string"),
    ("update user", "bio", 7, "must be a string"),
    ("update user", "image", {"url": "x"}, "must be a string"),
    ("update user", "username", True, "must be a string"),
    ("create article", "title", 1, "must be a string"),
    ("create article", "description", 1.5, "must be a string"),
    ("create article", "body", {"text": "b"}, "must be a string"),
    ("create article", "tagList", "a,b", "must be an array"),
    ("create article", "tagList", {"a": "b"}, "must be an array"),
    ("create article", "tagList", [1, 2], "must be a string"),
    ("update article", "title", 1, "must be a string"),
    ("update article", "body", {"text": "b"}, "must be a string"),
    ("update article", "tagList", "a,b", "must be an array"),
    ("comment", "body", {"text": "b"}, "must be a string"),
    ("comment", "body", ["b"], "must be a string"),
    ("comment", "body", 3, "must be a string"),
    ("admin update user", "active", "sometimes", "must be a boolean"),
    ("admin update user", "active", [True], "must be a boolean"),
]


@pytest.mark.parametrize(("endpoint", "field", "value", "message"), WRONG_TYPES)
async def test_wrong_types_are_422_naming_the_field(
    client: httpx.AsyncClient,
    db: AsyncSession,
    world: World,
    endpoint: str,
    field: str,
    value: Any,
    message: str,
) -> None:
    before = await state(db)
    response = await world.endpoints[endpoint].send_fields(client, **{field: value})
    assert_error(response, 422, {field: [message]})
    assert await state(db) == before


BLANKS = [
    (endpoint, field, value)
    for endpoint, fields in [
        ("register", ("username", "email")),
        ("login", ("email", "password")),
        ("update user", ("username", "email")),
        ("create article", ("title", "description", "body")),
        ("update article", ("title", "description", "body")),
        ("comment", ("body",)),
    ]
    for field in fields
    for value in ("", "   ", "\t\n ")
]


@pytest.mark.parametrize(("endpoint", "field", "value"), BLANKS)
async def test_blank_or_whitespace_strings_are_cant_be_blank(
    client: httpx.AsyncClient, db: AsyncSession, world: World, endpoint: str, field: str, value: str
) -> None:
    before = await state(db)
    response = await world.endpoints[endpoint].send_fields(client, **{field: value})
    assert_error(response, 422, {field: [BLANK]})
    assert await state(db) == before


@pytest.mark.parametrize("value", ["", "  "])
async def test_blank_tag_names_are_refused(
    client: httpx.AsyncClient, db: AsyncSession, world: World, value: str
) -> None:
    before = await state(db)
    response = await world.endpoints["create article"].send_fields(client, tagList=["ok", value])
    assert_error(response, 422, {"tagList": [BLANK]})
    assert await state(db) == before


TOO_LONG = [
    ("register", "username", 64),
    ("register", "password", 256),
    ("update user", "username", 64),
    ("update user", "bio", 2000),
    ("update user", "image", 2048),
    ("create article", "title", 255),
    ("create article", "description", 1000),
    ("create article", "body", 100_000),
    ("update article", "title", 255),
    ("update article", "description", 1000),
    ("comment", "body", 10_000),
]


@pytest.mark.parametrize(("endpoint", "field", "maximum"), TOO_LONG)
async def test_over_long_strings_say_the_maximum(
    client: httpx.AsyncClient, db: AsyncSession, world: World, endpoint: str, field: str, maximum: int
) -> None:
    before = await state(db)
    response = await world.endpoints[endpoint].send_fields(client, **{field: "a" * (maximum + 1)})
    assert_error(response, 422, {field: [f"is too long (maximum is {maximum} characters)"]})
    assert await state(db) == before


async def test_over_long_email_is_refused(client: httpx.AsyncClient, db: AsyncSession, world: World) -> None:
    before = await state(db)
    response = await world.endpoints["register"].send_fields(client, email="a" * 250 + "@example.org")
    assert_error(response, 422, {"email": ["is too long (maximum is 254 characters)"]})
    assert await state(db) == before


@pytest.mark.parametrize("endpoint", ["create article", "update article"])
async def test_over_long_tag_name_is_refused(
    client: httpx.AsyncClient, db: AsyncSession, world: World, endpoint: str
) -> None:
    before = await state(db)
    response = await world.endpoints[endpoint].send_fields(client, tagList=["t" * 65])
    assert_error(response, 422, {"tagList": ["is too long (maximum is 64 characters)"]})
    assert await state(db) == before


@pytest.mark.parametrize("endpoint", ["create article", "update article"])
async def test_more_than_twenty_tags_is_refused(
    client: httpx.AsyncClient, db: AsyncSession, world: World, endpoint: str
) -> None:
    before = await state(db)
    response = await world.endpoints[endpoint].send_fields(client, tagList=[f"tag{i}" for i in range(21)])
    assert_error(response, 422, {"tagList": ["has too many items (maximum is 20)"]})
    assert await state(db) == before


async def test_twenty_tags_are_accepted(client: httpx.AsyncClient, world: World) -> None:
    tags = [f"tag{i}" for i in range(20)]
    response = await world.endpoints["create article"].send_fields(client, tagList=tags)
    assert response.status_code == 201
    assert response.json()["article"]["tagList"] == sorted(tags)


async def test_several_bad_fields_are_all_reported(client: httpx.AsyncClient, world: World) -> None:
    response = await world.endpoints["create article"].send(
        client, json={"article": {"title": "", "description": 5, "tagList": "x"}}
    )
    assert_error(
        response,
        422,
        {
            "title": [BLANK],
            "description": ["must be a string"],
            "body": [BLANK],
            "tagList": ["must be an array"],
        },
    )


# --- query parameters ------------------------------------------------------------------------------

LISTS = {
    "articles": ("/api/articles", None),
    "feed": ("/api/articles/feed", "author"),
    "admin users": ("/api/admin/users", "admin"),
}

BAD_PARAMS = [
    ("limit", "0", "must be greater than or equal to 1"),
    ("limit", "-1", "must be greater than or equal to 1"),
    ("limit", "101", "must be less than or equal to 100"),
    ("limit", "abc", "must be an integer"),
    ("limit", "1.5", "must be an integer"),
    ("limit", "", "must be an integer"),
    ("limit", str(10**30), "must be less than or equal to 100"),
    ("offset", "-1", "must be greater than or equal to 0"),
    ("offset", "x", "must be an integer"),
    ("offset", str(2**31), "must be less than or equal to 2147483647"),
    ("offset", str(10**30), "must be less than or equal to 2147483647"),
]


@pytest.mark.parametrize("listing", list(LISTS))
@pytest.mark.parametrize(("name", "value", "message"), BAD_PARAMS)
async def test_out_of_range_or_non_integer_paging_is_422_naming_the_parameter(
    client: httpx.AsyncClient, world: World, listing: str, name: str, value: str, message: str
) -> None:
    path, who = LISTS[listing]
    headers = {"author": world.author.headers, "admin": world.admin.headers}.get(who or "", {})
    response = await client.get(path, params={name: value}, headers=headers)
    assert_error(response, 422, {name: [message]})


@pytest.mark.parametrize("listing", list(LISTS))
@pytest.mark.parametrize(
    "params", [{"limit": "1"}, {"limit": "100"}, {"offset": "0"}, {"offset": str(2**31 - 1)}]
)
async def test_paging_at_the_bounds_is_accepted(
    client: httpx.AsyncClient, world: World, listing: str, params: dict[str, str]
) -> None:
    path, who = LISTS[listing]
    headers = {"author": world.author.headers, "admin": world.admin.headers}.get(who or "", {})
    response = await client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    count_key = "usersCount" if listing == "admin users" else "articlesCount"
    assert response.json()[count_key] == {"articles": 1, "feed": 0, "admin users": 2}[listing]


# --- body size ---------------------------------------------------------------------------------------

SMALL_LIMIT = 1024


@pytest.fixture
async def small_client(
    database_url: str, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with a 1 KiB body limit, on the test's own transaction."""
    app = create_app(make_settings(database_url, max_body_bytes=SMALL_LIMIT), engine=engine)
    on_test_transaction(app, sessionmaker)
    async with asgi_client(app) as client:
        yield client


def article_document(size: int) -> bytes:
    """A valid new-article document of exactly `size` bytes."""
    empty = json.dumps({"article": {"title": "Sized", "description": "d", "body": ""}}).encode()
    document = json.dumps(
        {"article": {"title": "Sized", "description": "d", "body": "b" * (size - len(empty))}}
    )
    assert len(document.encode()) == size
    return document.encode()


async def chunks(data: bytes, size: int = 100) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_body_at_the_limit_is_accepted(small_client: httpx.AsyncClient, world: World) -> None:
    response = await small_client.post(
        "/api/articles",
        content=article_document(SMALL_LIMIT),
        headers=world.author.headers | {"Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["article"]["title"] == "Sized"


async def test_body_over_the_limit_by_content_length_is_413_body(
    small_client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    before = await state(db)
    response = await small_client.post(
        "/api/articles",
        content=article_document(SMALL_LIMIT + 1),
        headers=world.author.headers | {"Content-Type": "application/json"},
    )
    assert response.request.headers["content-length"] == str(SMALL_LIMIT + 1)
    assert_error(response, 413, {"body"})
    assert await state(db) == before


async def test_chunked_body_over_the_limit_is_413_body(
    small_client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    before = await state(db)
    response = await small_client.post(
        "/api/articles",
        content=chunks(article_document(SMALL_LIMIT * 3)),
        headers=world.author.headers | {"Content-Type": "application/json"},
    )
    # No declared length: only counting the streamed bytes can catch it.
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_error(response, 413, {"body"})
    assert await state(db) == before


async def test_chunked_body_within_the_limit_is_accepted(
    small_client: httpx.AsyncClient, world: World
) -> None:
    response = await small_client.post(
        "/api/articles",
        content=chunks(article_document(SMALL_LIMIT - 24)),
        headers=world.author.headers | {"Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 201, response.text
    assert response.json()["article"]["title"] == "Sized"


@pytest.mark.parametrize("endpoint", ["register", "comment", "update user", "admin update user"])
async def test_every_write_endpoint_enforces_the_limit(
    small_client: httpx.AsyncClient, db: AsyncSession, world: World, endpoint: str
) -> None:
    spec = world.endpoints[endpoint]
    before = await state(db)
    padded = json.dumps({spec.wrapper: spec.valid, "padding": "p" * SMALL_LIMIT}).encode()
    response = await spec.send(small_client, content=padded, headers={"Content-Type": "application/json"})
    assert_error(response, 413, {"body"})
    assert await state(db) == before


async def test_default_limit_is_one_mebibyte(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    before = await state(db)
    response = await client.post(
        "/api/articles",
        content=article_document(1024 * 1024 + 1),
        headers=world.author.headers | {"Content-Type": "application/json"},
    )
    assert_error(response, 413, {"body"})
    assert await state(db) == before


# --- routes and methods ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/nope"),
        ("GET", "/nope"),
        ("POST", "/api/articles/some-slug/comments/1/replies"),
        ("GET", "/api/profiles"),
        ("DELETE", "/api/admin"),
    ],
)
async def test_unknown_route_is_404_path(client: httpx.AsyncClient, method: str, path: str) -> None:
    assert_error(await client.request(method, path), 404, {"path"})


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/tags", {"GET"}),
        ("PATCH", "/api/articles", {"GET", "POST"}),
        ("GET", "/api/users/login", {"POST"}),
        ("POST", "/api/user", {"GET", "PUT"}),
        ("DELETE", "/api/admin/users", {"GET"}),
        ("POST", "/api/articles/some-slug", {"GET", "PUT", "DELETE"}),
    ],
)
async def test_wrong_method_is_405_listing_every_allowed_method(
    client: httpx.AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    response = await client.request(method, path)
    assert_error(response, 405, {"method"})
    # RFC 9110 15.5.6: Allow lists all the methods the resource supports, not just one route's.
    assert {name.strip() for name in response.headers["allow"].split(",")} == allowed
