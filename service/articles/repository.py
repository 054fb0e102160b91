"""SQL for articles, tags and favourites.

Listing is one statement whatever the page size or filter, and it reads the page, not the list:
the page's ids come first, from the one index that holds the list in order (`articles` for all
articles and `?author=`, `article_tags` for `?tag=`, `favorites` for `?favorited=`), and only
those rows are joined to their authors, their tags (an array per row), `favorited` and
`following`. The total comes from the counts the triggers keep (migration 0002), read in the same
statement; a COUNT over the rows remains only for a combination of filters. Writes that can race
(new tags, favourites) are `INSERT ... ON CONFLICT DO NOTHING`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
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
    or_,
    select,
    update,
)

from service.articles.schemas import ArticleFilter
from service.db import UnitOfWork
from service.dialects import InkwellDialect
from service.models import Article, ArticleTag, Counter, Favorite, Follow, Tag, User
from service.models.base import utcnow

# The read statements are built once per shape (dialect, signed in or not, which filters) with bind
# parameters, and reused: SQLAlchemy memoises a statement's cache key on the object, and building
# and keying a fresh statement per request was an eighth of a signed-in list's CPU (py-spy).

# `GET /api/tags` lists the most used tags and, beside them, the most recently used ones, so a tag
# just given to an article is listed however many tags a site has (docs/scale.md).
TAGS_MOST_USED = 200
TAGS_RECENTLY_USED = 50

Shape = tuple[bool, bool, bool, bool]


def _tag_names(dialect: InkwellDialect) -> Any:
    """The row's article's tag names in alphabetical (code point) order, as one column of the same
    SELECT: Conduit's public test collections expect them sorted, whatever order they were sent in."""
    rows = (
        select(dialect.code_point_order(Tag.name.expression), Tag.name)
        .select_from(ArticleTag)
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


def _user_id(name: str) -> Any:
    return select(User.id).where(User.username == bindparam(name)).scalar_subquery()


def _tag_id() -> Any:
    return select(Tag.id).where(Tag.name == bindparam("tag")).scalar_subquery()


def _matching(shape: Shape) -> Select[Any]:
    """The ids and creation times of the matching articles, from the index that holds them in
    list order; with two filters, the second is checked per row (no index holds both in order)."""
    tag, author, favorited, feed = shape
    by_author = Article.author_id == _user_id("author")
    in_feed = Article.author_id.in_(
        select(Follow.followee_id).where(Follow.follower_id == bindparam("feed_of"))
    )
    if not (tag or favorited):
        source = select(Article.id, Article.created_at)
        return source.where(
            *[condition for condition, wanted in ((by_author, author), (in_feed, feed)) if wanted]
        )
    key: Any
    if tag:
        key = ArticleTag.article_id
        source = select(key.label("id"), ArticleTag.article_created_at.label("created_at"))
        source = source.where(ArticleTag.tag_id == _tag_id())
        if favorited:
            fan = _user_id("favorited")
            source = source.where(exists().where(Favorite.article_id == key, Favorite.user_id == fan))
    else:
        key = Favorite.article_id
        source = select(key.label("id"), Favorite.article_created_at.label("created_at"))
        source = source.where(Favorite.user_id == _user_id("favorited"))
    written = [condition for condition, wanted in ((by_author, author), (in_feed, feed)) if wanted]
    if written:
        source = source.where(exists(select(Article.id).where(Article.id == key, *written)))
    return source


def _shape(filters: ArticleFilter) -> Shape:
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
def _count_query(shape: Shape) -> Select[Any]:
    """The list's total: a kept count for no filter or one, a COUNT only for a combination."""
    kept: Select[Any]
    match shape:
        case (False, False, False, False):
            kept = select(Counter.value).where(Counter.name == "articles")
        case (True, False, False, False):
            kept = select(Tag.articles_count).where(Tag.name == bindparam("tag"))
        case (False, True, False, False):
            kept = select(User.articles_count).where(User.username == bindparam("author"))
        case (False, False, True, False):
            kept = select(User.favorites_count).where(User.username == bindparam("favorited"))
        case (False, False, False, True):
            # The sum over the followed authors: as many rows as the reader follows.
            followed = select(Follow.followee_id).where(Follow.follower_id == bindparam("feed_of"))
            kept = select(func.sum(User.articles_count)).where(User.id.in_(followed))
        case _:
            return select(func.count()).select_from(_matching(shape).subquery())
    # No such tag or user: an empty list.
    return select(func.coalesce(kept.scalar_subquery(), 0))


@functools.cache
def _page_query(dialect: InkwellDialect, shape: Shape, with_viewer: bool) -> Select[Any]:
    # The page's ids first (LIMIT/OFFSET over one index, skipping ids, not built rows), then the
    # rest for those rows only: at a million articles `?tag=` went from 1.8 s to a few ms.
    matching = _matching(shape)
    article_id, created_at = matching.selected_columns
    page = (
        matching.order_by(created_at.desc(), article_id.desc())
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
        .subquery("page")
    )
    total = _count_query(shape).scalar_subquery().correlate(None)
    columns = _columns(dialect, with_viewer=with_viewer, with_body=False).add_columns(total.label("total"))
    return columns.join(page, page.c.id == Article.id).order_by(page.c.created_at.desc(), page.c.id.desc())


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
    query = select(Article.id, Article.author_id, Article.title, Article.created_at).where(
        Article.slug == slug
    )
    return (await uow.read.rows(query)).first()


async def add_article(
    uow: UnitOfWork, *, slug: str, title: str, description: str, body: str, author_id: int
) -> Row[Any] | None:
    """Insert an article: its id and created_at, or None when the slug is already taken (the caller
    picks another)."""
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
        .returning(Article.id, Article.created_at)
    )
    return (await uow.write(statement, articles=[slug])).first()


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


async def set_tags(
    uow: UnitOfWork, article_id: int, names: Sequence[str], *, slug: str, created_at: datetime
) -> None:
    """The article's tags, in this order (the article with this id, whose slug is `slug`, created
    at `created_at`)."""
    if names:
        # Sorted, so two transactions adding the same new tags wait for each other in one order.
        await uow.write(
            uow.dialect.insert_or_ignore(Tag, index_elements=["name"]),
            [{"name": name} for name in sorted(set(names))],
            articles=[slug],
        )
    # Every tag this changes, those the article leaves and those it takes, locked in id order before
    # the triggers count them: a retagging (which drops some tags and adds others) would otherwise
    # lock them in two runs, and deadlock against a publication taking the same tags in id order.
    held = select(ArticleTag.tag_id).where(ArticleTag.article_id == article_id)
    changed = select(Tag.name, Tag.id).where(or_(Tag.id.in_(held), Tag.name.in_(names)))
    ids = dict((await uow.read.rows(changed.order_by(Tag.id).with_for_update())).tuples().all())
    await uow.write(delete(ArticleTag).where(ArticleTag.article_id == article_id), articles=[slug])
    if not names:
        return
    # In tag id order too, as the triggers update the tags' rows.
    rows = [
        {"article_id": article_id, "tag_id": ids[name], "position": i, "article_created_at": created_at}
        for i, name in enumerate(names)
    ]
    await uow.write(insert(ArticleTag), sorted(rows, key=lambda row: row["tag_id"]), articles=[slug])


async def delete_article(uow: UnitOfWork, article_id: int, *, slug: str) -> None:
    await uow.write(delete(Article).where(Article.id == article_id), articles=[slug])


# The favourite's statements, built once (per dialect) like the reads: a favourite is a hot write.
# Run as plain SQL with their parameters (Core's execution, `core_only`/`raw`): no ORM bulk mode,
# no objects in the session to update.
#
# The article's count moves first, then the favourite is added or removed, and the count moved
# back in the rare case there was nothing to add or remove. So the article's row is locked before
# anything else, as a deletion or an edit of the article locks it: taking the favourite first
# (whose foreign key holds the article's row shared) and the count after was a lock upgrade that
# deadlocked against a concurrent deletion of the article. The common case stays two statements.
_COUNT_FAVORITE = (
    update(Article)
    .where(Article.slug == bindparam("favorited_slug"))
    .values(favorites_count=Article.favorites_count + bindparam("delta", type_=Integer))
    .returning(Article.id, Article.created_at)
    .execution_options(dml_strategy="core_only")
)
_UNCOUNT_FAVORITE = (
    update(Article)
    .where(Article.id == bindparam("favorited_id", type_=Integer))
    .values(favorites_count=Article.favorites_count - bindparam("delta", type_=Integer))
    .execution_options(dml_strategy="core_only")
)
_REMOVE_FAVORITE = (
    delete(Favorite)
    .where(
        Favorite.user_id == bindparam("fan_id", type_=Integer),
        Favorite.article_id == bindparam("favorited_id", type_=Integer),
    )
    .returning(Favorite.article_id)
    .execution_options(dml_strategy="core_only")
)


@functools.cache
def _add_favorite(dialect: InkwellDialect) -> Any:
    return (
        dialect.insert_or_ignore(Favorite)
        .values(
            user_id=bindparam("fan_id", type_=Integer),
            article_id=bindparam("favorited_id", type_=Integer),
            article_created_at=bindparam("favorited_created_at"),
        )
        .returning(Favorite.article_id)
        .execution_options(dml_strategy="raw")
    )


async def favorite(uow: UnitOfWork, *, user_id: int, slug: str, on: bool) -> bool:
    """Favourite (`on`) or unfavourite the article with this slug, if there is one and that
    changes anything: whether it did."""
    touched = [slug]
    delta = 1 if on else -1
    counted = {"favorited_slug": slug, "delta": delta}
    article = (await uow.write(_COUNT_FAVORITE, counted, articles=touched)).first()
    if article is None:
        return False
    params = {"fan_id": user_id, "favorited_id": article.id, "favorited_created_at": article.created_at}
    change = _add_favorite(uow.dialect) if on else _REMOVE_FAVORITE
    if (await uow.write(change, params, articles=touched)).first() is None:
        await uow.write(_UNCOUNT_FAVORITE, {"favorited_id": article.id, "delta": delta}, articles=touched)
        return False
    return True


_MOST_USED_TAGS = (
    select(Tag.name)
    .where(Tag.articles_count > 0)
    .order_by(Tag.articles_count.desc(), Tag.name)
    .limit(bindparam("most_used", type_=Integer))
)
_RECENTLY_USED_TAGS = (
    select(Tag.name)
    .where(Tag.articles_count > 0)
    .order_by(Tag.last_used_at.desc())
    .limit(bindparam("recently_used", type_=Integer))
)


async def tags_in_use(uow: UnitOfWork) -> list[str]:
    """The most used tags, most used first, then the most recently used of the others: from the
    kept counts, two index reads of a few hundred rows however many articles there are."""
    most_used = (await uow.read.rows(_MOST_USED_TAGS, {"most_used": TAGS_MOST_USED})).scalars().all()
    recent = (await uow.read.rows(_RECENTLY_USED_TAGS, {"recently_used": TAGS_RECENTLY_USED})).scalars().all()
    return list(dict.fromkeys([*most_used, *recent]))
