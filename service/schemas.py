"""The pydantic building blocks of every domain's schemas (the OpenAPI contract): camelCase names,
timestamps, input checks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

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


def _web_url(value: str) -> str:
    # Images are shown by browsers: a `javascript:` or `data:` URL there runs or smuggles content.
    try:
        parts = urlsplit(value)
    except ValueError:
        raise ValueError("must be an http or https URL") from None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname or value != value.strip():
        raise ValueError("must be an http or https URL")
    return value


# Conduit clients send "" to clear bio and image; both are stored and returned as null.
OptionalText = Annotated[Annotated[str, Field(max_length=2000)] | None, BeforeValidator(empty_to_none)]
OptionalUrl = Annotated[
    Annotated[str, Field(max_length=2048, examples=["https://example.org/me.png"]), AfterValidator(_web_url)]
    | None,
    BeforeValidator(empty_to_none),
]


def _refuse_null(value: object) -> object:
    if value is None:
        raise ValueError("can't be null")
    return value


class _NotNull:
    """On an optional field of an update: left out, it is None (unchanged); sent as null, it is
    refused, and the OpenAPI schema says so by not allowing null, as Conduit's spec does. Defaults
    are not validated, so only a null that was sent reaches the check."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(_refuse_null, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        branches = [branch for branch in json_schema.get("anyOf", ()) if branch != {"type": "null"}]
        if len(branches) == 1:
            rest = {key: value for key, value in json_schema.items() if key != "anyOf"}
            return {**branches[0], **rest}
        return json_schema


# Annotated[Title | None, NotNull] = None: may be left out, never null.
NotNull = _NotNull()


class Profile(WireModel):
    username: str
    bio: str | None
    image: str | None
    following: bool
