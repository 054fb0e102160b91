"""Publishing, listing, editing and favouriting articles: the rules, for any transport.

Articles come back as the rows of one SELECT (`repository`), which `articles.wire` turns into
Conduit's JSON without building a model per row.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row

from service.articles import repository, schemas
from service.articles.schemas import ArticleFilter
from service.auth.roles import Role, has_role
from service.db import UnitOfWork
from service.errors import Forbidden, NotFound
from service.live import emit
from service.models import User
from service.observability import metrics

_SLUG_ATTEMPTS = 5


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:200].strip("-") or "article"


def _slug_candidates(title: str, reserved: frozenset[str]) -> list[str]:
    base = slugify(title)
    # The plain slug first; on a clash, a short random suffix rather than a count, which races.
    # A word a route holds in the slug's place (`feed`) is a clash from the start.
    suffixed = [f"{base}-{secrets.token_hex(3)}" for _ in range(_SLUG_ATTEMPTS - 1)]
    return suffixed if base in reserved else [base, *suffixed]


@dataclass(frozen=True)
class ArticlePage:
    """One page of a list (rows without bodies), and how many articles the list holds."""

    rows: Sequence[Row[Any]]
    total: int


async def list_articles(
    *, uow: UnitOfWork, filters: ArticleFilter, viewer: User | None, limit: int, offset: int
) -> ArticlePage:
    rows = await repository.page(
        uow, filters, viewer_id=viewer.id if viewer else None, limit=limit, offset=offset
    )
    # Past the end the page is empty and carries no total: only then is it counted on its own.
    total = int(rows[0].total) if rows else (await repository.count(uow, filters) if offset else 0)
    return ArticlePage(rows, total)


async def get(*, uow: UnitOfWork, slug: str, viewer: User | None) -> Row[Any]:
    """The article with its body, as the viewer sees it (favourited, following its author)."""
    row = await repository.get_by_slug(uow, slug, viewer_id=viewer.id if viewer else None)
    if row is None:
        raise NotFound("article")
    return row


async def create(
    *, uow: UnitOfWork, author: User, data: schemas.NewArticle, reserved: frozenset[str] = frozenset()
) -> Row[Any]:
    """`reserved`: the words no slug may be (the transport's fixed routes beside `{slug}`)."""
    for slug in _slug_candidates(data.title, reserved):
        added = await repository.add_article(
            uow,
            slug=slug,
            title=data.title,
            description=data.description,
            body=data.body,
            author_id=author.id,
        )
        if added is not None:
            await repository.set_tags(uow, added.id, data.tag_list, slug=slug, created_at=added.created_at)
            uow.after_commit(metrics.ARTICLES_PUBLISHED.inc)
            article = await get(uow=uow, slug=slug, viewer=author)
            emit.article_published(uow, row=article)
            return article
    raise RuntimeError("could not find a free slug")  # pragma: no cover - 2**24 suffixes, five tries


async def _editable(uow: UnitOfWork, slug: str, user: User) -> Row[Any]:
    found = await repository.find_for_edit(uow, slug)
    if found is None:
        raise NotFound("article")
    if not (has_role(user, Role.admin) or (found.author_id == user.id and has_role(user, Role.editor))):
        raise Forbidden("article")
    return found


async def update(
    *,
    uow: UnitOfWork,
    slug: str,
    user: User,
    data: schemas.UpdateArticle,
    reserved: frozenset[str] = frozenset(),
) -> Row[Any]:
    found = await _editable(uow, slug, user)
    changes = data.model_dump(exclude_unset=True, exclude_none=True, by_alias=False)
    tags = changes.pop("tag_list", None)
    new_slug = slug
    if changes.get("title", found.title) == found.title:
        await repository.update_fields(uow, found.id, slug=slug, values=changes)
    else:
        # A new title gets a new slug (Conduit's rule); the old slug stops resolving.
        for candidate in _slug_candidates(changes["title"], reserved):
            if await repository.update_fields(
                uow, found.id, slug=slug, values={**changes, "slug": candidate}
            ):
                new_slug = candidate
                break
        else:  # pragma: no cover - see create()
            raise RuntimeError("could not find a free slug")
    if tags is not None:
        await repository.set_tags(uow, found.id, tags, slug=new_slug, created_at=found.created_at)
    article = await get(uow=uow, slug=new_slug, viewer=user)
    # On the slug its subscribers know it by; the event carries the new one.
    emit.article_updated(uow, slug=slug, row=article)
    return article


async def delete(*, uow: UnitOfWork, slug: str, user: User) -> None:
    found = await _editable(uow, slug, user)
    await repository.delete_article(uow, found.id, slug=slug)
    emit.article_deleted(uow, slug=slug)


async def favorite(*, uow: UnitOfWork, slug: str, user: User, on: bool) -> Row[Any]:
    # The change finds the article by its slug itself; reading it back answers 404 when there is none.
    changed = await repository.favorite(uow, user_id=user.id, slug=slug, on=on)
    article = await get(uow=uow, slug=slug, viewer=user)
    if changed:  # favouriting twice changes nothing, and tells nobody anything
        emit.favorites_changed(uow, row=article, fan=user, on=on)
    return article


async def tags(*, uow: UnitOfWork) -> list[str]:
    """The tags articles carry, the most used first (capped for very large sites: docs/scale.md)."""
    return await repository.tags_in_use(uow)
