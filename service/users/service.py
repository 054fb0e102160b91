"""Registration, login and profile updates: the rules, independent of HTTP."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.security import create_token, hash_password, verify_password
from service.config import Settings
from service.errors import Conflict, Unauthorized
from service.models import User
from service.users import repository, schemas


def user_out(settings: Settings, user: User, token: str | None = None) -> schemas.UserResponse:
    return schemas.UserResponse(
        user=schemas.User(
            email=user.email,
            token=token or create_token(settings, user.id),
            username=user.username,
            bio=user.bio,
            image=user.image,
        )
    )


def token_out(settings: Settings, user: User) -> schemas.TokenResponse:
    return schemas.TokenResponse(access_token=create_token(settings, user.id), expires_in=settings.jwt_ttl_seconds)


async def register(*, session: AsyncSession, settings: Settings, data: schemas.NewUser) -> User:
    taken = await repository.taken_fields(session, username=data.username, email=data.email)
    if taken:
        raise Conflict(taken)
    user = await repository.insert(
        session,
        username=data.username,
        email=data.email,
        password_hash=await hash_password(settings, data.password),
        role=settings.default_role.value,
    )
    if user is None:
        # Lost a race with a concurrent registration: say which field is now taken.
        raise Conflict(
            await repository.taken_fields(session, username=data.username, email=data.email)
            or {"username": ["has already been taken"]}
        )
    return user


async def authenticate(*, session: AsyncSession, settings: Settings, login: str, password: str, by_username: bool = False) -> User:
    if by_username:
        user = await repository.get_by_login(session, login)
    else:
        user = await repository.get_by_email(session, login)
    valid = await verify_password(settings, user.password_hash if user else None, password)
    if user is None or not valid:
        raise Unauthorized("email or password is invalid", field="credentials")
    if not user.is_active:
        raise Unauthorized("account is deactivated", field="credentials")
    return user


async def update(*, session: AsyncSession, settings: Settings, user: User, data: schemas.UpdateUser) -> User:
    changes = data.model_dump(exclude_unset=True, by_alias=False)
    # Required fields may be left out, but not set to null.
    for field in ("email", "username", "password"):
        if changes.get(field, ...) is None:
            changes.pop(field)
    values: dict[str, object] = {k: v for k, v in changes.items() if k in {"email", "username", "bio", "image"}}
    taken = await repository.taken_fields(
        session, username=values.get("username"), email=values.get("email"), exclude_id=user.id  # type: ignore[arg-type]
    )
    if taken:
        raise Conflict(taken)
    if "password" in changes:
        values["password_hash"] = await hash_password(settings, changes["password"])
    try:
        await repository.update_fields(session, user, values)
    except IntegrityError:
        raise Conflict({"user": ["username or email has already been taken"]}) from None
    return user
