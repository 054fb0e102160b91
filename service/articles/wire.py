"""Articles in Conduit's wire format, straight from the rows the articles service returns: a list
item without its body, the single article with it (the spec of 2024-08)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from service import wire
from service.articles.service import ArticlePage


def _list_item(row: Row[Any]) -> dict[str, Any]:
    return {
        "slug": row.slug,
        "title": row.title,
        "description": row.description,
        "tagList": row.tag_list,
        "createdAt": wire.timestamp(row.created_at),
        "updatedAt": wire.timestamp(row.updated_at),
        "favorited": bool(row.favorited),
        "favoritesCount": row.favorites_count,
        "author": wire.author(row),
    }


def article(row: Row[Any]) -> dict[str, Any]:
    return {"article": {**_list_item(row), "body": row.body}}


def articles(page: ArticlePage) -> dict[str, Any]:
    return {"articles": [_list_item(row) for row in page.rows], "articlesCount": page.total}


def tags(names: list[str]) -> dict[str, Any]:
    return {"tags": names}
