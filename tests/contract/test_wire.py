"""Every mapper's output is exactly what its pydantic schema (the OpenAPI contract) describes: each
field present with its type and format, nothing more, so the mappers and the schemas cannot drift."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

import service
from service.admin import schemas as admin_schemas
from service.admin import service as admin
from service.admin import wire as admin_wire
from service.articles import schemas as article_schemas
from service.articles import service as articles
from service.articles import wire as article_wire
from service.articles.schemas import ArticleFilter
from service.comments import schemas as comment_schemas
from service.comments import service as comments
from service.comments import wire as comment_wire
from service.db import UnitOfWork
from service.models import User
from service.profiles import schemas as profile_schemas
from service.profiles import service as profiles
from service.profiles import wire as profile_wire
from service.users import repository as users
from service.users import schemas as user_schemas
from service.users import wire as user_wire
from tests.factories import create_article, create_comment, create_user, favorite, follow

pytestmark = pytest.mark.anyio


def assert_matches(schema: type[BaseModel], document: dict[str, Any]) -> None:
    # Validated (every field there, of its type) and written back the way the schema writes it:
    # equal only if the mapper added nothing, dropped nothing and formatted everything alike.
    model = schema.model_validate(document)
    assert model.model_dump(mode="json", by_alias=True) == document


async def arrange(client: httpx.AsyncClient) -> tuple[str, str, str]:
    """An author with a bio, a reader who follows them and favours their tagged, commented article."""
    author = await create_user(client)
    await client.put("/api/user", json={"user": {"bio": "Writes things."}}, headers=author.headers)
    reader = await create_user(client)
    article = await create_article(client, author, tags=["wire", "format"])
    await create_comment(client, author, article["slug"], body="First!")
    await follow(client, reader, author.username)
    await favorite(client, reader, article["slug"])
    return author.username, reader.username, article["slug"]


async def user(uow: UnitOfWork, username: str) -> User:
    found = await users.get_by_username(uow, username)
    assert found is not None
    return found


async def mapped(
    uow: UnitOfWork, author_name: str, reader_name: str, slug: str
) -> dict[Callable[..., Any], Any]:
    """Each mapper's output for real domain objects, as the reader sees them."""
    author, reader = await user(uow, author_name), await user(uow, reader_name)
    page = await articles.list_articles(uow=uow, filters=ArticleFilter(), viewer=reader, limit=20, offset=0)
    comment_rows = await comments.list_for(uow=uow, slug=slug, viewer=reader, limit=20, offset=0)
    admin_page = await admin.list_users(uow=uow, limit=10, offset=0)
    return {
        article_wire.article: (
            article_schemas.SingleArticleResponse,
            article_wire.article(await articles.get(uow=uow, slug=slug, viewer=reader)),
        ),
        article_wire.articles: (article_schemas.MultipleArticlesResponse, article_wire.articles(page)),
        article_wire.tags: (article_schemas.TagsResponse, article_wire.tags(await articles.tags(uow=uow))),
        comment_wire.comment: (comment_schemas.SingleCommentResponse, comment_wire.comment(comment_rows[0])),
        comment_wire.comments: (
            comment_schemas.MultipleCommentsResponse,
            comment_wire.comments(comment_rows),
        ),
        profile_wire.profile: (
            profile_schemas.ProfileResponse,
            profile_wire.profile(await profiles.get(uow=uow, username=author_name, viewer=reader)),
        ),
        user_wire.user: (user_schemas.UserResponse, user_wire.user(author, token="a.jwt.token")),
        user_wire.token: (user_schemas.TokenResponse, user_wire.token("a.jwt.token", expires_in=3600)),
        admin_wire.user: (admin_schemas.AdminUserResponse, admin_wire.user(author)),
        admin_wire.users: (admin_schemas.AdminUsersResponse, admin_wire.users(*admin_page)),
    }


def public_mappers() -> set[Callable[..., Any]]:
    """Every public function of every `service.<domain>.wire` module."""
    found: set[Callable[..., Any]] = set()
    for package in pkgutil.iter_modules(service.__path__):
        if not package.ispkg:
            continue
        try:
            module = importlib.import_module(f"service.{package.name}.wire")
        except ModuleNotFoundError:
            continue
        found |= {
            function
            for name, function in inspect.getmembers(module, inspect.isfunction)
            if not name.startswith("_") and function.__module__ == module.__name__
        }
    return found


async def test_every_mapper_writes_exactly_what_its_schema_describes(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    names = await arrange(client)
    async with app.state.database.unit_of_work(writable=False) as uow:
        outputs = await mapped(uow, *names)
    # A new mapper must be checked here too.
    assert set(outputs) == public_mappers()
    for schema, document in outputs.values():
        assert_matches(schema, document)
    article = outputs[article_wire.article][1]["article"]
    # Real values, not defaults: the reader's view of a tagged, favourited article by someone they follow.
    assert (article["tagList"], article["favorited"], article["favoritesCount"]) == (
        ["format", "wire"],
        True,
        1,
    )
    assert article["author"] == {
        "username": names[0],
        "bio": "Writes things.",
        "image": None,
        "following": True,
    }
    assert article["createdAt"].endswith("Z")


def test_a_mapper_that_drifts_from_its_schema_is_caught() -> None:
    document = user_wire.token("a.jwt.token", expires_in=3600)
    with pytest.raises(AssertionError):
        assert_matches(user_schemas.TokenResponse, {**document, "scope": "extra"})
    with pytest.raises(Exception, match="expires_in"):
        assert_matches(user_schemas.TokenResponse, {k: v for k, v in document.items() if k != "expires_in"})
