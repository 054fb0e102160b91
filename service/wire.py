"""Conduit's wire format for what every domain shares (timestamps, an author's profile), used by the
per-domain mappers (`<domain>/wire.py`) that turn domain objects into response documents.

An article and a comment are here too, not only in their domains' mappers: the services put them
in the live events they emit (`service.live.emit`), below the mappers' layer, and both must be
the one same shape."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, as Conduit's examples spell it."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def profile(*, username: str, bio: str | None, image: str | None, following: bool) -> dict[str, Any]:
    return {"username": username, "bio": bio, "image": image, "following": following}


def author(row: Any) -> dict[str, Any]:
    """The author's profile of a row that selects it as `author_username`, `author_bio`,
    `author_image` and `following` (an article's, a comment's)."""
    return profile(
        username=row.author_username,
        bio=row.author_bio,
        image=row.author_image,
        following=bool(row.following),
    )


def comment(row: Any) -> dict[str, Any]:
    """A comment's object from a row of `service.comments.repository`."""
    return {
        "id": row.id,
        "createdAt": timestamp(row.created_at),
        "updatedAt": timestamp(row.updated_at),
        "body": row.body,
        "author": author(row),
    }


def article(row: Any, *, body: bool) -> dict[str, Any]:
    """An article's object from a row of `service.articles.repository`: with its body (the single
    article) or without (a list's item, the spec of 2024-08)."""
    item = {
        "slug": row.slug,
        "title": row.title,
        "description": row.description,
        "tagList": row.tag_list,
        "createdAt": timestamp(row.created_at),
        "updatedAt": timestamp(row.updated_at),
        "favorited": bool(row.favorited),
        "favoritesCount": row.favorites_count,
        "author": author(row),
    }
    if body:
        item["body"] = row.body
    return item
