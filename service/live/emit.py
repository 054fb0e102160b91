"""The live events of the domain's writes, built from the rows the services already read.

One function per kind of write, called by its service right after the write, into the write's unit
of work (`UnitOfWork.emit`): published once the unit commits (`service.live.commit`). What they
carry is the Conduit wire object (`service.wire`) as an anonymous reader sees it, since one event
goes to every subscriber: `favorited` and `following` are false whoever wrote. The topics and types
are `service.live.events`'s; docs/live-events.md lists which write emits what.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service import wire
from service.live import events as live

if TYPE_CHECKING:
    from service.db import UnitOfWork
    from service.models import User


def _anonymous_author(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "author": {**item["author"], "following": False}}


def _article(row: Any) -> dict[str, Any]:
    return {**_anonymous_author(wire.article(row, body=True)), "favorited": False}


def _profile(user: User) -> dict[str, Any]:
    return wire.profile(username=user.username, bio=user.bio, image=user.image, following=False)


def comment_created(uow: UnitOfWork, *, slug: str, row: Any, article: Any) -> None:
    """`row`: the new comment; `article`: its article's `author_id` and `title`."""
    comment = _anonymous_author(wire.comment(row))
    uow.emit(live.article_topic(slug), live.COMMENT_CREATED, {"comment": comment})
    if article.author_id != row.author_id:
        uow.emit(
            live.user_topic(article.author_id),
            live.ARTICLE_COMMENTED,
            {"comment": comment, "article": {"slug": slug, "title": article.title}},
        )


def comment_deleted(uow: UnitOfWork, *, slug: str, comment_id: int) -> None:
    uow.emit(live.article_topic(slug), live.COMMENT_DELETED, {"comment": {"id": comment_id}})


def article_published(uow: UnitOfWork, *, row: Any) -> None:
    uow.emit(live.author_topic(row.author_id), live.ARTICLE_PUBLISHED, {"article": _article(row)})


def article_updated(uow: UnitOfWork, *, slug: str, row: Any) -> None:
    """`slug`: the one it had, whose subscribers are told; `row` carries the new one if it changed."""
    uow.emit(live.article_topic(slug), live.ARTICLE_UPDATED, {"article": _article(row)})


def article_deleted(uow: UnitOfWork, *, slug: str) -> None:
    uow.emit(live.article_topic(slug), live.ARTICLE_DELETED, {"article": {"slug": slug}})


def favorites_changed(uow: UnitOfWork, *, row: Any, fan: User, on: bool) -> None:
    """`row`: the article read after the change, in the same transaction, so its count is the one
    that commits (the change holds the article's row locked until then)."""
    counted = {"slug": row.slug, "favoritesCount": row.favorites_count}
    uow.emit(live.article_topic(row.slug), live.ARTICLE_FAVORITES, {"article": counted})
    if on and row.author_id != fan.id:
        uow.emit(
            live.user_topic(row.author_id),
            live.ARTICLE_FAVORITED,
            {"article": {"slug": row.slug, "title": row.title}, "profile": _profile(fan)},
        )


def following_changed(uow: UnitOfWork, *, follower: User, followee_id: int, following: bool) -> None:
    if following:
        uow.emit(live.user_topic(followee_id), live.PROFILE_FOLLOWED, {"profile": _profile(follower)})
    # For the hub, which keeps the follow set of each connected user (their `me` gets the
    # publications of the authors they follow).
    uow.emit(
        live.user_topic(follower.id),
        live.FOLLOWING_CHANGED,
        {"author": followee_id, "following": following},
    )


def user_deactivated(uow: UnitOfWork, *, user_id: int) -> None:
    uow.emit(live.user_topic(user_id), live.USER_DEACTIVATED, {})
