"""Publishing, listing, editing and favouriting articles: the rules, independent of HTTP."""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from service.articles import repository, schemas
from service.articles.schemas import ArticleFilter
from service.auth.dependencies import has_role
from service.config import Role
from service.errors import Forbidden, NotFound
from service.models import User
from service.observability import metrics
from service.schemas import Profile

_SLUG_ATTEMPTS = 5


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:200].strip("-") or "article"


def _slug_candidates(title: str) -> list[str]:
    base = slugify(title)
    # The plain slug first; on a clash, a short random suffix rather than a count, which races.
    return [base] + [f"{base}-{secrets.token_hex(3)}" for _ in range(_SLUG_ATTEMPTS - 1)]


def _author(row: Row[Any]) -> Profile:
    return Profile(
        username=row.author_username,
        bio=row.author_bio,
        image=row.author_image,
        following=bool(row.following),
    )


def _list_item(row: Row[Any], tags: list[str]) -> schemas.ArticleListItem:
    return schemas.ArticleListItem(
        slug=row.slug,
        title=row.title,
        description=row.description,
        tag_list=tags,
        created_at=row.created_at,
        updated_at=row.updated_at,
        favorited=bool(row.favorited),
        favorites_count=row.favorites_count,
        author=_author(row),
    )


def _article(row: Row[Any], tags: list[str]) -> schemas.Article:
    return schemas.Article(**_list_item(row, tags).model_dump(by_alias=False), body=row.body)


async def list_articles(
    *, session: AsyncSession, filters: ArticleFilter, viewer: User | None, limit: int, offset: int
) -> schemas.MultipleArticlesResponse:
    rows: Sequence[Row[Any]] = await repository.page(
        session, filters, viewer_id=viewer.id if viewer else None, limit=limit, offset=offset
    )
    # Past the end the page is empty and carries no total: only then is it counted on its own.
    total = int(rows[0].total) if rows else (await repository.count(session, filters) if offset else 0)
    tags = await repository.tags_of(session, [row.id for row in rows])
    return schemas.MultipleArticlesResponse(
        articles=[_list_item(row, tags.get(row.id, [])) for row in rows], articles_count=total
    )


async def get(*, session: AsyncSession, slug: str, viewer: User | None) -> schemas.Article:
    row = await repository.get_by_slug(session, slug, viewer_id=viewer.id if viewer else None)
    if row is None:
        raise NotFound("article")
    tags = await repository.tags_of(session, [row.id])
    return _article(row, tags.get(row.id, []))


async def create(*, session: AsyncSession, author: User, data: schemas.NewArticle) -> schemas.Article:
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
) -> schemas.Article:
    found = await _editable(session, slug, user)
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
                break
        else:  # pragma: no cover - see create()
            raise RuntimeError("could not find a free slug")
    if tags is not None:
        await repository.set_tags(session, found.id, tags)
    return await get(session=session, slug=new_slug, viewer=user)


async def delete(*, session: AsyncSession, slug: str, user: User) -> None:
    found = await _editable(session, slug, user)
    await repository.delete_article(session, found.id)


async def favorite(*, session: AsyncSession, slug: str, user: User, on: bool) -> schemas.Article:
    found = await repository.find_for_edit(session, slug)
    if found is None:
        raise NotFound("article")
    if on:
        await repository.favorite(session, user_id=user.id, article_id=found.id)
    else:
        await repository.unfavorite(session, user_id=user.id, article_id=found.id)
    return await get(session=session, slug=slug, viewer=user)


async def tags(*, session: AsyncSession) -> schemas.TagsResponse:
    return schemas.TagsResponse(tags=await repository.tags_in_use(session))
