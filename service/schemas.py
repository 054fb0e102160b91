"""The pydantic building blocks of every domain's schemas (the OpenAPI contract): camelCase names,
timestamps, input checks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

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

from service.wire import timestamp

Timestamp = Annotated[datetime, PlainSerializer(timestamp, return_type=str)]


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
