"""Commenting: anyone signed in may comment; the author or an admin may delete."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from service import cache
from service.articles import repository as articles
from service.auth.dependencies import has_role
from service.comments import repository, schemas
from service.config import Role
from service.errors import Forbidden, NotFound
from service.models import User
from service.observability import metrics
from service.schemas import Profile

_MAX_ID = 2**31 - 1


def _comment(row: Row[Any]) -> schemas.Comment:
    return schemas.Comment(
        id=row.id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        body=row.body,
        author=Profile(
            username=row.author_username,
            bio=row.author_bio,
            image=row.author_image,
            following=bool(row.following),
        ),
    )


async def _article_id(session: AsyncSession, slug: str) -> int:
    found = await articles.find_for_edit(session, slug)
    if found is None:
        raise NotFound("article")
    return int(found.id)


async def list_for(
    *, session: AsyncSession, slug: str, viewer: User | None
) -> schemas.MultipleCommentsResponse:
    article_id = await _article_id(session, slug)
    rows = await repository.for_article(session, article_id, viewer_id=viewer.id if viewer else None)
    return schemas.MultipleCommentsResponse(comments=[_comment(row) for row in rows])


async def add(*, session: AsyncSession, slug: str, author: User, data: schemas.NewComment) -> schemas.Comment:
    article_id = await _article_id(session, slug)
    cache.concerns(session, slug)
    comment_id = await repository.add_comment(
        session, article_id=article_id, author_id=author.id, body=data.body
    )
    metrics.count_on_commit(session, metrics.COMMENTS_CREATED)
    row = await repository.get(session, comment_id, viewer_id=author.id)
    assert row is not None
    return _comment(row)


async def delete(*, session: AsyncSession, slug: str, comment_id: int, user: User) -> None:
    article_id = await _article_id(session, slug)
    # An id beyond the column's range cannot exist; asking the database would only fail.
    row = await repository.get(session, comment_id, viewer_id=None) if 0 < comment_id <= _MAX_ID else None
    if row is None or row.article_id != article_id:
        raise NotFound("comment")
    if row.author_id != user.id and not has_role(user, Role.admin):
        raise Forbidden("comment")
    cache.concerns(session, slug)
    await repository.delete_comment(session, comment_id)
