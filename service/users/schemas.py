"""Request and response bodies of the user endpoints, exactly as Conduit spells them."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field

from service.schemas import NotBlank, OptionalText, OptionalUrl, WireModel, empty_to_none


def _normalise_email(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


Email = Annotated[
    str,
    BeforeValidator(_normalise_email),
    Field(min_length=1, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$", examples=["jake@jake.jake"]),
]
# Usernames are path segments (/api/profiles/{username}): no slashes, no surrounding spaces.
Username = Annotated[
    str,
    BeforeValidator(_strip),
    Field(min_length=1, max_length=64, pattern=r"^[^/\s]([^/\x00-\x1f]*[^/\s])?$", examples=["jake"]),
]
NewPassword = Annotated[str, Field(min_length=8, max_length=256, examples=["jakejake"])]


class NewUser(WireModel):
    username: Username
    email: Email
    password: NewPassword


class NewUserRequest(WireModel):
    user: NewUser


class LoginUser(WireModel):
    email: Annotated[str, BeforeValidator(_normalise_email), Field(min_length=1, max_length=254)]
    password: Annotated[str, Field(min_length=1, max_length=256), NotBlank]


class LoginUserRequest(WireModel):
    user: LoginUser


class UpdateUser(WireModel):
    email: Email | None = None
    username: Username | None = None
    # Settings forms of some Conduit clients send "" for "unchanged".
    password: Annotated[NewPassword | None, BeforeValidator(empty_to_none)] = None
    bio: OptionalText = None
    image: OptionalUrl = None


class UpdateUserRequest(WireModel):
    user: UpdateUser


class User(WireModel):
    email: str
    token: str
    username: str
    bio: str | None
    image: str | None


class UserResponse(WireModel):
    user: User


class TokenResponse(BaseModel):
    """OAuth2 token response (RFC 6749 section 5.1), in that standard's snake_case."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int
