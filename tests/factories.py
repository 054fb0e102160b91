"""Small helpers that create data through the API, each returning what a test needs to go on."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from service.models import User

_counter = itertools.count(1)
PASSWORD = "correct-horse-battery"


@dataclass
class Account:
    username: str
    email: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


async def create_user(
    client: httpx.AsyncClient,
    *,
    username: str | None = None,
    email: str | None = None,
    password: str = PASSWORD,
    role: str | None = None,
    db: AsyncSession | None = None,
) -> Account:
    username = username or unique("user")
    email = email or f"{username.lower()}@example.org"
    response = await client.post(
        "/api/users", json={"user": {"username": username, "email": email, "password": password}}
    )
    assert response.status_code == 201, response.text
    user = response.json()["user"]
    if role is not None:
        assert db is not None, "changing a role needs the db fixture"
        await db.execute(update(User).where(User.username == username).values(role=role))
        await db.commit()
    return Account(username=username, email=email, password=password, token=user["token"])


async def create_article(
    client: httpx.AsyncClient,
    author: Account,
    *,
    title: str | None = None,
    description: str = "A description",
    body: str = "A body",
    tags: list[str] | None = None,
) -> dict[str, Any]:
    article: dict[str, Any] = {"title": title or unique("Title "), "description": description, "body": body}
    if tags is not None:
        article["tagList"] = tags
    response = await client.post("/api/articles", json={"article": article}, headers=author.headers)
    assert response.status_code == 201, response.text
    return dict(response.json()["article"])


async def create_comment(
    client: httpx.AsyncClient, author: Account, slug: str, body: str = "Nice!"
) -> dict[str, Any]:
    response = await client.post(
        f"/api/articles/{slug}/comments", json={"comment": {"body": body}}, headers=author.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json()["comment"])


async def follow(client: httpx.AsyncClient, follower: Account, username: str) -> None:
    response = await client.post(f"/api/profiles/{username}/follow", headers=follower.headers)
    assert response.status_code == 200, response.text


async def favorite(client: httpx.AsyncClient, account: Account, slug: str) -> dict[str, Any]:
    response = await client.post(f"/api/articles/{slug}/favorite", headers=account.headers)
    assert response.status_code == 200, response.text
    return dict(response.json()["article"])
