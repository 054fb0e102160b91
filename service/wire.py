"""Conduit's wire format for what every domain shares (timestamps, an author's profile), used by the
per-domain mappers (`<domain>/wire.py`) that turn domain objects into response documents."""

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
