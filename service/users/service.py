"""Registration, login and profile updates: the rules, independent of HTTP."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.security import create_token, hash_password, verify_password
from service.config import Settings
from service.errors import Conflict, Unauthorized
from service.models import User
from service.observability import metrics
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
    return schemas.TokenResponse(
        access_token=create_token(settings, user.id), expires_in=settings.jwt_ttl_seconds
    )


async def register(*, session: AsyncSession, settings: Settings, data: schemas.NewUser) -> User:
    taken = await repository.taken_fields(session, username=data.username, email=data.email)
    if taken:
        raise Conflict(taken)
    user = await repository.add_user(
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
    metrics.count_on_commit(session, metrics.REGISTRATIONS)
    return user


async def authenticate(
    *, session: AsyncSession, settings: Settings, login: str, password: str, by_username: bool = False
) -> User:
    if by_username:
        user = await repository.get_by_login(session, login)
    else:
        user = await repository.get_by_email(session, login)
    valid = await verify_password(settings, user.password_hash if user else None, password)
    if user is None or not valid:
        metrics.LOGIN_FAILURES.labels("unknown_user" if user is None else "wrong_password").inc()
        raise Unauthorized("email or password is invalid", field="credentials")
    if not user.is_active:
        metrics.LOGIN_FAILURES.labels("deactivated").inc()
        raise Unauthorized("account is deactivated", field="credentials")
    metrics.LOGINS.inc()
    return user


async def update(*, session: AsyncSession, settings: Settings, user: User, data: schemas.UpdateUser) -> User:
    # bio and image may be set to null; username, email and password left out or null stay as they are.
    values: dict[str, Any] = data.model_dump(include={"bio", "image"}, exclude_unset=True)
    if data.username is not None:
        values["username"] = data.username
    if data.email is not None:
        values["email"] = data.email
    taken = await repository.taken_fields(
        session, username=data.username, email=data.email, exclude_id=user.id
    )
    if taken:
        raise Conflict(taken)
    if data.password is not None:
        values["password_hash"] = await hash_password(settings, data.password)
    try:
        async with session.begin_nested():
            await repository.update_fields(session, user, values)
    except IntegrityError:
        # A concurrent request took the name or email between the check and the write; the
        # savepoint is gone, so we can ask again which one.
        raise Conflict(
            await repository.taken_fields(
                session, username=data.username, email=data.email, exclude_id=user.id
            )
            or {"username": ["has already been taken"]}
        ) from None
    return user
