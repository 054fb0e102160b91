"""Publishing, listing, editing and favouriting articles: the rules, independent of HTTP."""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from service import cache
from service.articles import repository, schemas
from service.articles.schemas import ArticleFilter
from service.auth.dependencies import has_role
from service.config import Role
from service.errors import Forbidden, NotFound
from service.models import User
from service.observability import metrics
from service.schemas import format_timestamp

_SLUG_ATTEMPTS = 5


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:200].strip("-") or "article"


def _slug_candidates(title: str) -> list[str]:
    base = slugify(title)
    # The plain slug first; on a clash, a short random suffix rather than a count, which races.
    return [base] + [f"{base}-{secrets.token_hex(3)}" for _ in range(_SLUG_ATTEMPTS - 1)]


def _list_item(row: Row[Any]) -> schemas.ArticleListItemJSON:
    return {
        "slug": row.slug,
        "title": row.title,
        "description": row.description,
        "tagList": row.tag_list,
        "createdAt": format_timestamp(row.created_at),
        "updatedAt": format_timestamp(row.updated_at),
        "favorited": bool(row.favorited),
        "favoritesCount": row.favorites_count,
        "author": {
            "username": row.author_username,
            "bio": row.author_bio,
            "image": row.author_image,
            "following": bool(row.following),
        },
    }


async def list_articles(
    *, session: AsyncSession, filters: ArticleFilter, viewer: User | None, limit: int, offset: int
) -> dict[str, Any]:
    """`{"articles": [...], "articlesCount": n}`, serialised from the rows without models."""
    rows: Sequence[Row[Any]] = await repository.page(
        session, filters, viewer_id=viewer.id if viewer else None, limit=limit, offset=offset
    )
    # Past the end the page is empty and carries no total: only then is it counted on its own.
    total = int(rows[0].total) if rows else (await repository.count(session, filters) if offset else 0)
    return {"articles": [_list_item(row) for row in rows], "articlesCount": total}


async def get(*, session: AsyncSession, slug: str, viewer: User | None) -> schemas.ArticleJSON:
    row = await repository.get_by_slug(session, slug, viewer_id=viewer.id if viewer else None)
    if row is None:
        raise NotFound("article")
    article: schemas.ArticleJSON = {**_list_item(row), "body": row.body}
    return article


async def create(*, session: AsyncSession, author: User, data: schemas.NewArticle) -> schemas.ArticleJSON:
    for slug in _slug_candidates(data.title):
        article_id = await repository.add_article(
            session,
            slug=slug,
            title=data.title,
            description=data.description,
            body=data.body,
            author_id=author.id,
        )
        if article_id is not None:
            cache.concerns(session, slug)
            await repository.set_tags(session, article_id, data.tag_list)
            metrics.count_on_commit(session, metrics.ARTICLES_PUBLISHED)
            return await get(session=session, slug=slug, viewer=author)
    raise RuntimeError("could not find a free slug")  # pragma: no cover - 2**24 suffixes, five tries


async def _editable(session: AsyncSession, slug: str, user: User) -> Row[Any]:
    found = await repository.find_for_edit(session, slug)
    if found is None:
        raise NotFound("article")
    if not (has_role(user, Role.admin) or (found.author_id == user.id and has_role(user, Role.editor))):
        raise Forbidden("article")
    return found


async def update(
    *, session: AsyncSession, slug: str, user: User, data: schemas.UpdateArticle
) -> schemas.ArticleJSON:
    found = await _editable(session, slug, user)
    cache.concerns(session, slug)
    changes = data.model_dump(exclude_unset=True, exclude_none=True, by_alias=False)
    tags = changes.pop("tag_list", None)
    new_slug = slug
    if changes.get("title", found.title) == found.title:
        await repository.update_fields(session, found.id, changes)
    else:
        # A new title gets a new slug (Conduit's rule); the old slug stops resolving.
        for candidate in _slug_candidates(changes["title"]):
            if await repository.update_fields(session, found.id, {**changes, "slug": candidate}):
                new_slug = candidate
                cache.concerns(session, new_slug)
                break
        else:  # pragma: no cover - see create()
            raise RuntimeError("could not find a free slug")
    if tags is not None:
        await repository.set_tags(session, found.id, tags)
    return await get(session=session, slug=new_slug, viewer=user)


async def delete(*, session: AsyncSession, slug: str, user: User) -> None:
    found = await _editable(session, slug, user)
    cache.concerns(session, slug)
    await repository.delete_article(session, found.id)


async def favorite(*, session: AsyncSession, slug: str, user: User, on: bool) -> schemas.ArticleJSON:
    # The change finds the article by its slug itself; reading it back answers 404 when there is none.
    cache.concerns(session, slug)
    if on:
        await repository.favorite(session, user_id=user.id, slug=slug)
    else:
        await repository.unfavorite(session, user_id=user.id, slug=slug)
    return await get(session=session, slug=slug, viewer=user)


async def tags(*, session: AsyncSession) -> schemas.TagsResponse:
    return schemas.TagsResponse(tags=await repository.tags_in_use(session))
