"""SQL for comments: one statement lists an article's comments with their authors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer, Row, Select, bindparam, delete, exists, false, insert, select

from service.db import UnitOfWork
from service.models import Comment, Follow, User
from service.models.base import utcnow


def _select(viewer_id: int | None) -> Select[Any]:
    following: Any = (
        false()
        if viewer_id is None
        else exists().where(Follow.followee_id == Comment.author_id, Follow.follower_id == viewer_id)
    )
    return select(
        Comment.id,
        Comment.body,
        Comment.created_at,
        Comment.updated_at,
        Comment.article_id,
        Comment.author_id,
        User.username.label("author_username"),
        User.bio.label("author_bio"),
        User.image.label("author_image"),
        following.label("following"),
    ).join(User, User.id == Comment.author_id)


def _page(viewer_id: int | None) -> Select[Any]:
    """A page of an article's comments, newest first, in the order of their index."""
    return (
        _select(viewer_id)
        .where(Comment.article_id == bindparam("article_id", type_=Integer))
        .order_by(Comment.created_at.desc(), Comment.id.desc())
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )


async def for_article(
    uow: UnitOfWork, article_id: int, *, viewer_id: int | None, limit: int, offset: int
) -> Sequence[Row[Any]]:
    params = {"article_id": article_id, "limit": limit, "offset": offset}
    return (await uow.read.rows(_page(viewer_id), params)).all()


async def get(uow: UnitOfWork, comment_id: int, *, viewer_id: int | None) -> Row[Any] | None:
    return (await uow.read.rows(_select(viewer_id).where(Comment.id == comment_id))).first()


async def add_comment(uow: UnitOfWork, *, article_id: int, slug: str, author_id: int, body: str) -> int:
    """A comment on the article with this id (whose slug is `slug`)."""
    now = utcnow()
    statement = (
        insert(Comment)
        .values(article_id=article_id, author_id=author_id, body=body, created_at=now, updated_at=now)
        .returning(Comment.id)
    )
    return int((await uow.write(statement, articles=[slug])).scalar_one())


async def delete_comment(uow: UnitOfWork, comment_id: int, *, slug: str) -> None:
    await uow.write(delete(Comment).where(Comment.id == comment_id), articles=[slug])
