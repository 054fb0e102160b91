"""SQL for articles, tags and favourites.

Listing is one statement whatever the page size or filter: the page with its authors, its tags (an
array per row), `favorited` and `following` (correlated EXISTS) and the total (a subquery counted
once); a COUNT follows only for a page past the end. Writes that can race (new tags, favourites)
are `INSERT ... ON CONFLICT DO NOTHING`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Integer,
    Row,
    Select,
    bindparam,
    delete,
    exists,
    false,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import aliased

from service.articles.schemas import ArticleFilter
from service.db import UnitOfWork
from service.dialects import InkwellDialect
from service.models import Article, ArticleTag, Favorite, Follow, Tag, User
from service.models.base import utcnow

# The read statements are built once per shape (dialect, signed in or not, which filters) with bind
# parameters, and reused: SQLAlchemy memoises a statement's cache key on the object, and building
# and keying a fresh statement per request was an eighth of a signed-in list's CPU (py-spy).


def _tag_names(dialect: InkwellDialect) -> Any:
    """The row's article's tag names in the author's order, as one column of the same SELECT."""
    rows = (
        select(ArticleTag.position, Tag.name)
        .join(Tag, Tag.id == ArticleTag.tag_id)
        .where(ArticleTag.article_id == Article.id)
    )
    return dialect.ordered_list(rows)


def _columns(dialect: InkwellDialect, *, with_viewer: bool, with_body: bool) -> Select[Any]:
    if with_viewer:
        viewer = bindparam("viewer_id", type_=Integer)
        favorited: Any = exists().where(Favorite.article_id == Article.id, Favorite.user_id == viewer)
        following: Any = exists().where(Follow.followee_id == Article.author_id, Follow.follower_id == viewer)
    else:
        favorited = false()
        following = false()
    columns: list[Any] = [
        Article.id,
        Article.slug,
        Article.title,
        Article.description,
        Article.created_at,
        Article.updated_at,
        Article.favorites_count,
        Article.author_id,
        User.username.label("author_username"),
        User.bio.label("author_bio"),
        User.image.label("author_image"),
        favorited.label("favorited"),
        following.label("following"),
        _tag_names(dialect).label("tag_list"),
    ]
    if with_body:
        columns.append(Article.body)
    return select(*columns).join(User, User.id == Article.author_id)


def _where(query: Select[Any], shape: tuple[bool, bool, bool, bool]) -> Select[Any]:
    tag, author, favorited, feed = shape
    if tag:
        query = query.where(
            exists().where(
                ArticleTag.article_id == Article.id, ArticleTag.tag_id == Tag.id, Tag.name == bindparam("tag")
            )
        )
    if author:
        writer = aliased(User)
        query = query.where(
            exists().where(writer.id == Article.author_id, writer.username == bindparam("author"))
        )
    if favorited:
        fan = aliased(User)
        query = query.where(
            exists().where(
                Favorite.article_id == Article.id,
                Favorite.user_id == fan.id,
                fan.username == bindparam("favorited"),
            )
        )
    if feed:
        query = query.where(
            exists().where(
                Follow.follower_id == bindparam("feed_of"), Follow.followee_id == Article.author_id
            )
        )
    return query


def _shape(filters: ArticleFilter) -> tuple[bool, bool, bool, bool]:
    return (
        filters.tag is not None,
        filters.author is not None,
        filters.favorited is not None,
        filters.feed_of is not None,
    )


def _params(filters: ArticleFilter, **more: Any) -> dict[str, Any]:
    given = {
        "tag": filters.tag,
        "author": filters.author,
        "favorited": filters.favorited,
        "feed_of": filters.feed_of,
    }
    return {key: value for key, value in given.items() if value is not None} | more


@functools.cache
def _count_query(shape: tuple[bool, bool, bool, bool]) -> Select[Any]:
    return _where(select(func.count()).select_from(Article), shape)


@functools.cache
def _page_query(
    dialect: InkwellDialect, shape: tuple[bool, bool, bool, bool], with_viewer: bool
) -> Select[Any]:
    # The total rides along as an uncorrelated subquery, which PostgreSQL counts once from the
    # index; a window count would join every matching row to its author, not just the page's.
    total = _count_query(shape).scalar_subquery().correlate(None)
    columns = _columns(dialect, with_viewer=with_viewer, with_body=False).add_columns(total.label("total"))
    return (
        _where(columns, shape)
        .order_by(Article.created_at.desc(), Article.id.desc())
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )


@functools.cache
def _article_query(dialect: InkwellDialect, with_viewer: bool) -> Select[Any]:
    columns = _columns(dialect, with_viewer=with_viewer, with_body=True)
    return columns.where(Article.slug == bindparam("slug"))


async def count(uow: UnitOfWork, filters: ArticleFilter) -> int:
    return int((await uow.read.rows(_count_query(_shape(filters)), _params(filters))).scalar_one())


async def page(
    uow: UnitOfWork, filters: ArticleFilter, *, viewer_id: int | None, limit: int, offset: int
) -> Sequence[Row[Any]]:
    query = _page_query(uow.dialect, _shape(filters), viewer_id is not None)
    params = _params(filters, limit=limit, offset=offset)
    if viewer_id is not None:
        params["viewer_id"] = viewer_id
    return (await uow.read.rows(query, params)).all()


async def get_by_slug(uow: UnitOfWork, slug: str, *, viewer_id: int | None) -> Row[Any] | None:
    params: dict[str, Any] = {"slug": slug}
    if viewer_id is not None:
        params["viewer_id"] = viewer_id
    return (await uow.read.rows(_article_query(uow.dialect, viewer_id is not None), params)).first()


async def find_for_edit(uow: UnitOfWork, slug: str) -> Row[Any] | None:
    query = select(Article.id, Article.author_id, Article.title).where(Article.slug == slug)
    return (await uow.read.rows(query)).first()


async def add_article(
    uow: UnitOfWork, *, slug: str, title: str, description: str, body: str, author_id: int
) -> int | None:
    """Insert an article; None when the slug is already taken (the caller picks another)."""
    now = utcnow()
    statement = (
        uow.dialect.insert_or_ignore(Article, index_elements=["slug"])
        .values(
            slug=slug,
            title=title,
            description=description,
            body=body,
            author_id=author_id,
            favorites_count=0,
            created_at=now,
            updated_at=now,
        )
        .returning(Article.id)
    )
    return (await uow.write(statement, articles=[slug])).scalar_one_or_none()


async def update_fields(uow: UnitOfWork, article_id: int, *, slug: str, values: dict[str, Any]) -> bool:
    """Update the article with this id (whose slug is `slug`); False when the new slug is taken."""
    touched = [slug]
    if "slug" in values:
        taken = await uow.read.rows(
            select(Article.id).where(Article.slug == values["slug"], Article.id != article_id)
        )
        if taken.first() is not None:
            return False
        touched.append(values["slug"])
    statement = update(Article).where(Article.id == article_id).values(updated_at=utcnow(), **values)
    await uow.write(statement, articles=touched)
    return True


async def set_tags(uow: UnitOfWork, article_id: int, names: Sequence[str], *, slug: str) -> None:
    """The article's tags, in this order (the article with this id, whose slug is `slug`)."""
    await uow.write(delete(ArticleTag).where(ArticleTag.article_id == article_id), articles=[slug])
    if not names:
        return
    # Sorted, so two transactions adding the same new tags lock them in the same order.
    await uow.write(
        uow.dialect.insert_or_ignore(Tag, index_elements=["name"]),
        [{"name": name} for name in sorted(set(names))],
        articles=[slug],
    )
    ids = dict((await uow.read.rows(select(Tag.name, Tag.id).where(Tag.name.in_(names)))).tuples().all())
    await uow.write(
        insert(ArticleTag),
        [{"article_id": article_id, "tag_id": ids[name], "position": i} for i, name in enumerate(names)],
        articles=[slug],
    )


async def delete_article(uow: UnitOfWork, article_id: int, *, slug: str) -> None:
    await uow.write(delete(Article).where(Article.id == article_id), articles=[slug])


# The favourite's statements, built once (per dialect) like the reads: a favourite is a hot write.
# Run as plain SQL with their parameters: no ORM bulk mode, no objects in the session to update.
_FAVORITES_DELTA = (
    update(Article)
    .where(Article.id == bindparam("favorited_id", type_=Integer))
    .values(favorites_count=Article.favorites_count + bindparam("delta", type_=Integer))
    .execution_options(synchronize_session=False)
)
_REMOVE_FAVORITE = (
    delete(Favorite)
    .where(
        Favorite.user_id == bindparam("user_id", type_=Integer),
        Favorite.article_id == select(Article.id).where(Article.slug == bindparam("slug")).scalar_subquery(),
    )
    .returning(Favorite.article_id)
    .execution_options(synchronize_session=False)
)


@functools.cache
def _add_favorite(dialect: InkwellDialect) -> Any:
    article = select(bindparam("user_id", type_=Integer), Article.id).where(Article.slug == bindparam("slug"))
    return (
        dialect.insert_or_ignore(Favorite)
        .from_select(["user_id", "article_id"], article)
        .returning(Favorite.article_id)
        .execution_options(dml_strategy="raw")
    )


async def favorite(uow: UnitOfWork, *, user_id: int, slug: str) -> None:
    """Favourite the article with this slug, if there is one and it is not a favourite yet."""
    touched = [slug]
    params = {"user_id": user_id, "slug": slug}
    added = (await uow.write(_add_favorite(uow.dialect), params, articles=touched)).scalar_one_or_none()
    if added is not None:
        await uow.write(_FAVORITES_DELTA, {"favorited_id": added, "delta": 1}, articles=touched)


async def unfavorite(uow: UnitOfWork, *, user_id: int, slug: str) -> None:
    """Unfavourite the article with this slug, if there is one and it is a favourite."""
    touched = [slug]
    params = {"user_id": user_id, "slug": slug}
    removed = (await uow.write(_REMOVE_FAVORITE, params, articles=touched)).scalar_one_or_none()
    if removed is not None:
        await uow.write(_FAVORITES_DELTA, {"favorited_id": removed, "delta": -1}, articles=touched)


async def tags_in_use(uow: UnitOfWork) -> list[str]:
    """Every tag some article carries, the most used first."""
    query = (
        select(Tag.name)
        .join(ArticleTag, ArticleTag.tag_id == Tag.id)
        .group_by(Tag.id, Tag.name)
        .order_by(func.count().desc(), Tag.name)
    )
    return list((await uow.read.rows(query)).scalars().all())
