"""SQL for articles, tags and favourites.

Listing is one statement whatever the page size or filter: the page with its authors, its tags (an
array per row), `favorited` and `following` (correlated EXISTS) and the total (a subquery counted
once); a COUNT follows only for a page past the end. Writes that can race (new tags, favourites)
are `INSERT ... ON CONFLICT DO NOTHING`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Dialect,
    Integer,
    Result,
    Row,
    Select,
    String,
    TypeDecorator,
    bindparam,
    delete,
    exists,
    false,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from service.articles.schemas import ArticleFilter
from service.db import insert_or_ignore
from service.models import Article, ArticleTag, Favorite, Follow, Tag, User
from service.models.base import utcnow

# The read statements are built once per shape (signed in or not, which filters) with bind
# parameters, and reused: SQLAlchemy memoises a statement's cache key on the object, and building
# and keying a fresh statement per request was an eighth of a signed-in list's CPU (py-spy).


class _TagNamesType(TypeDecorator[list[str]]):
    """A list of tag names from PostgreSQL's text[], or from SQLite's JSON of [position, name]."""

    impl = String
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            # SQLite 3.40 has no ORDER BY inside an aggregate: the positions come along instead.
            return [name for _position, name in sorted(json.loads(value))]
        return list(value)


class TagNames(FunctionElement[list[str]]):
    """The row's article's tag names in the author's order, as one column of the same SELECT."""

    inherit_cache = True  # no state of its own: statements that use it stay in the compiled cache
    type = _TagNamesType()


@compiles(TagNames, "postgresql")
def _tag_names_postgresql(_element: TagNames, compiler: SQLCompiler, **kw: Any) -> str:
    names = (
        select(Tag.name)
        .join(ArticleTag, ArticleTag.tag_id == Tag.id)
        .where(ArticleTag.article_id == Article.id)
        .order_by(ArticleTag.position)
        .scalar_subquery()
    )
    return f"ARRAY{compiler.process(names, **kw)}"


@compiles(TagNames, "sqlite")
def _tag_names_sqlite(_element: TagNames, compiler: SQLCompiler, **kw: Any) -> str:
    pairs = (
        select(func.json_group_array(func.json_array(ArticleTag.position, Tag.name)))
        .join(Tag, Tag.id == ArticleTag.tag_id)
        .where(ArticleTag.article_id == Article.id)
        .scalar_subquery()
    )
    return compiler.process(pairs, **kw)


def _columns(*, with_viewer: bool, with_body: bool) -> Select[Any]:
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
        TagNames().label("tag_list"),
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
def _page_query(shape: tuple[bool, bool, bool, bool], with_viewer: bool) -> Select[Any]:
    # The total rides along as an uncorrelated subquery, which PostgreSQL counts once from the
    # index; a window count would join every matching row to its author, not just the page's.
    total = _count_query(shape).scalar_subquery().correlate(None)
    columns = _columns(with_viewer=with_viewer, with_body=False).add_columns(total.label("total"))
    return (
        _where(columns, shape)
        .order_by(Article.created_at.desc(), Article.id.desc())
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )


@functools.cache
def _article_query(with_viewer: bool) -> Select[Any]:
    return _columns(with_viewer=with_viewer, with_body=True).where(Article.slug == bindparam("slug"))


async def _read(session: AsyncSession, query: Select[Any], params: dict[str, Any]) -> Result[Any]:
    """Runs a read of plain columns on the session's connection: SQLAlchemy Core alone, without
    the ORM's statement and result handling, which these rows (no entities) do not need."""
    return await (await session.connection()).execute(query, params)


async def count(session: AsyncSession, filters: ArticleFilter) -> int:
    return int((await _read(session, _count_query(_shape(filters)), _params(filters))).scalar_one())


async def page(
    session: AsyncSession, filters: ArticleFilter, *, viewer_id: int | None, limit: int, offset: int
) -> Sequence[Row[Any]]:
    query = _page_query(_shape(filters), viewer_id is not None)
    params = _params(filters, limit=limit, offset=offset)
    if viewer_id is not None:
        params["viewer_id"] = viewer_id
    return (await _read(session, query, params)).all()


async def get_by_slug(session: AsyncSession, slug: str, *, viewer_id: int | None) -> Row[Any] | None:
    params: dict[str, Any] = {"slug": slug}
    if viewer_id is not None:
        params["viewer_id"] = viewer_id
    return (await _read(session, _article_query(viewer_id is not None), params)).first()


async def find_for_edit(session: AsyncSession, slug: str) -> Row[Any] | None:
    query = select(Article.id, Article.author_id, Article.title).where(Article.slug == slug)
    return (await session.execute(query)).first()


async def add_article(
    session: AsyncSession, *, slug: str, title: str, description: str, body: str, author_id: int
) -> int | None:
    """Insert an article; None when the slug is already taken (the caller picks another)."""
    now = utcnow()
    statement = (
        insert_or_ignore(session, Article, index_elements=["slug"])
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
    return (await session.execute(statement)).scalar_one_or_none()


async def update_fields(session: AsyncSession, article_id: int, values: dict[str, Any]) -> bool:
    """Update an article; False when the new slug is already taken."""
    if "slug" in values:
        taken = await session.execute(
            select(Article.id).where(Article.slug == values["slug"], Article.id != article_id)
        )
        if taken.first() is not None:
            return False
    await session.execute(
        update(Article).where(Article.id == article_id).values(updated_at=utcnow(), **values)
    )
    return True


async def set_tags(session: AsyncSession, article_id: int, names: Sequence[str]) -> None:
    await session.execute(delete(ArticleTag).where(ArticleTag.article_id == article_id))
    if not names:
        return
    # Sorted, so two transactions adding the same new tags lock them in the same order.
    await session.execute(
        insert_or_ignore(session, Tag, index_elements=["name"]),
        [{"name": name} for name in sorted(set(names))],
    )
    ids = dict((await session.execute(select(Tag.name, Tag.id).where(Tag.name.in_(names)))).tuples().all())
    await session.execute(
        insert(ArticleTag),
        [{"article_id": article_id, "tag_id": ids[name], "position": i} for i, name in enumerate(names)],
    )


async def delete_article(session: AsyncSession, article_id: int) -> None:
    await session.execute(delete(Article).where(Article.id == article_id))


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
def _add_favorite(dialect: str) -> Any:
    article = select(bindparam("user_id", type_=Integer), Article.id).where(Article.slug == bindparam("slug"))
    return (
        insert_or_ignore(dialect, Favorite)
        .from_select(["user_id", "article_id"], article)
        .returning(Favorite.article_id)
        .execution_options(dml_strategy="raw")
    )


async def favorite(session: AsyncSession, *, user_id: int, slug: str) -> None:
    """Favourite the article with this slug, if there is one and it is not a favourite yet."""
    statement = _add_favorite(session.get_bind().dialect.name)
    added = (await session.execute(statement, {"user_id": user_id, "slug": slug})).scalar_one_or_none()
    if added is not None:
        await session.execute(_FAVORITES_DELTA, {"favorited_id": added, "delta": 1})


async def unfavorite(session: AsyncSession, *, user_id: int, slug: str) -> None:
    """Unfavourite the article with this slug, if there is one and it is a favourite."""
    removed = (
        await session.execute(_REMOVE_FAVORITE, {"user_id": user_id, "slug": slug})
    ).scalar_one_or_none()
    if removed is not None:
        await session.execute(_FAVORITES_DELTA, {"favorited_id": removed, "delta": -1})


async def tags_in_use(session: AsyncSession) -> list[str]:
    """Every tag some article carries, the most used first."""
    query = (
        select(Tag.name)
        .join(ArticleTag, ArticleTag.tag_id == Tag.id)
        .group_by(Tag.id, Tag.name)
        .order_by(func.count().desc(), Tag.name)
    )
    return list((await session.execute(query)).scalars().all())
