"""Commenting: anyone signed in may comment; the author or an admin may delete (Conduit has no
editing of a comment). Both are live events on the article (`service.live.emit`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row

from service.articles import repository as articles
from service.auth.roles import Role, has_role
from service.comments import repository, schemas
from service.db import UnitOfWork
from service.errors import Forbidden, NotFound
from service.live import emit
from service.models import User
from service.observability import metrics

_MAX_ID = 2**31 - 1


async def _article(uow: UnitOfWork, slug: str) -> Row[Any]:
    """The article's id, author_id and title."""
    found = await articles.find_for_edit(uow, slug)
    if found is None:
        raise NotFound("article")
    return found


async def _article_id(uow: UnitOfWork, slug: str) -> int:
    return int((await _article(uow, slug)).id)


async def list_for(
    *, uow: UnitOfWork, slug: str, viewer: User | None, limit: int, offset: int
) -> Sequence[Row[Any]]:
    """A page of the article's comments, newest first, with their authors as the viewer sees them."""
    article_id = await _article_id(uow, slug)
    return await repository.for_article(
        uow, article_id, viewer_id=viewer.id if viewer else None, limit=limit, offset=offset
    )


async def add(*, uow: UnitOfWork, slug: str, author: User, data: schemas.NewComment) -> Row[Any]:
    article = await _article(uow, slug)
    comment_id = await repository.add_comment(
        uow, article_id=int(article.id), slug=slug, author_id=author.id, body=data.body
    )
    uow.after_commit(metrics.COMMENTS_CREATED.inc)
    row = await repository.get(uow, comment_id, viewer_id=author.id)
    assert row is not None
    emit.comment_created(uow, slug=slug, row=row, article=article)
    return row


async def delete(*, uow: UnitOfWork, slug: str, comment_id: int, user: User) -> None:
    article_id = await _article_id(uow, slug)
    # An id beyond the column's range cannot exist; asking the database would only fail.
    row = await repository.get(uow, comment_id, viewer_id=None) if 0 < comment_id <= _MAX_ID else None
    if row is None or row.article_id != article_id:
        raise NotFound("comment")
    if row.author_id != user.id and not has_role(user, Role.admin):
        raise Forbidden("comment")
    await repository.delete_comment(uow, comment_id, slug=slug)
    emit.comment_deleted(uow, slug=slug, comment_id=comment_id)
