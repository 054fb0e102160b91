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
