"""Request and response bodies of the user endpoints, exactly as Conduit spells them."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field

from service.schemas import NotBlank, NotNull, OptionalText, OptionalUrl, WireModel


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


def _refuse_blank(value: object) -> object:
    # Before the length check, so an empty password reads "can't be blank", not "is too short".
    if isinstance(value, str) and not value.strip():
        raise ValueError("can't be blank")
    return value


def _no_at(value: str) -> str:
    # With an `@` a name can pass for someone's email where a login takes either (`/api/token`).
    if "@" in value:
        raise ValueError("can't contain @")
    return value


# A new name (registration, a rename): no `@`. Names that already have one are kept (users.service).
NewUsername = Annotated[Username, AfterValidator(_no_at)]

NewPassword = Annotated[
    str, BeforeValidator(_refuse_blank), Field(min_length=8, max_length=256, examples=["jakejake"])
]


class NewUser(WireModel):
    username: NewUsername
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
    # Left out, each stays as it is; null is 422 (the spec does not allow it), and so is an empty
    # password: it is no longer read as "unchanged".
    email: Annotated[Email | None, NotNull] = None
    username: Annotated[Username | None, NotNull] = None
    password: Annotated[NewPassword | None, NotNull] = None
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
