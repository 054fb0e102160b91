"""Articles in Conduit's wire format, straight from the rows the articles service returns: a list
item without its body, the single article with it (the spec of 2024-08)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from service import wire
from service.articles.service import ArticlePage


def article(row: Row[Any]) -> dict[str, Any]:
    return {"article": wire.article(row, body=True)}


def articles(page: ArticlePage) -> dict[str, Any]:
    return {"articles": [wire.article(row, body=False) for row in page.rows], "articlesCount": page.total}


def tags(names: list[str]) -> dict[str, Any]:
    return {"tags": names}
