"""Wire-format building blocks shared by every domain: camelCase names, timestamps, input checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel


def format_timestamp(value: datetime) -> str:
    # SQLite hands back naive datetimes; everything is stored in UTC.
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]


class WireModel(BaseModel):
    """Python names in snake_case, JSON names in camelCase (tagList, createdAt, favoritesCount)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("can't be blank")
    return value


def _empty_to_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


# Whitespace-only text is as blank as an empty string: Annotated[str, Field(max_length=...), NotBlank].
NotBlank = AfterValidator(_not_blank)


# Conduit clients send "" to clear bio and image; both are stored and returned as null.
OptionalText = Annotated[str | None, BeforeValidator(_empty_to_none), Field(max_length=2000)]
OptionalUrl = Annotated[str | None, BeforeValidator(_empty_to_none), Field(max_length=2048)]


class Profile(WireModel):
    username: str
    bio: str | None
    image: str | None
    following: bool
