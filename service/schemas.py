"""Wire-format building blocks shared by every domain: camelCase names, timestamps, input checks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Response
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import to_json

from service.errors import JSON_MEDIA_TYPE


def format_timestamp(value: datetime) -> str:
    # SQLite hands back naive datetimes; everything is stored in UTC.
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]


def _no_nul(value: str) -> str:
    # PostgreSQL cannot store U+0000 in text; refuse it as bad input rather than fail on insert.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# For path, query and form parameters: Annotated[str, Path(...), NoNul].
NoNul = AfterValidator(_no_nul)


class WireModel(BaseModel):
    """Python names in snake_case, JSON names in camelCase (tagList, createdAt, favoritesCount)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        if isinstance(value, str):
            _no_nul(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    _no_nul(item)
        return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("can't be blank")
    return value


def empty_to_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


# Whitespace-only text is as blank as an empty string: Annotated[str, Field(max_length=...), NotBlank].
NotBlank = AfterValidator(_not_blank)


# Conduit clients send "" to clear bio and image; both are stored and returned as null.
OptionalText = Annotated[Annotated[str, Field(max_length=2000)] | None, BeforeValidator(empty_to_none)]
OptionalUrl = Annotated[Annotated[str, Field(max_length=2048)] | None, BeforeValidator(empty_to_none)]


class Profile(WireModel):
    username: str
    bio: str | None
    image: str | None
    following: bool


def json_response(content: BaseModel | Mapping[str, Any], *, status_code: int = 200) -> Response:
    """The JSON of a model (by alias) or of wire-ready data, serialised once by pydantic's core, not
    validated again and encoded by FastAPI as a returned model would be."""
    body = content.model_dump_json(by_alias=True) if isinstance(content, BaseModel) else to_json(content)
    return Response(body, status_code=status_code, media_type=JSON_MEDIA_TYPE)
