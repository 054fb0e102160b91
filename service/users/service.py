"""Registration, login, who a token belongs to, and profile updates: the rules, for any transport."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from service.auth.security import InvalidToken, create_token, decode_token, hash_password, verify_password
from service.config import Settings
from service.db import UnitOfWork
from service.errors import Conflict, Unauthorized, Unprocessable
from service.models import User
from service.observability import metrics
from service.users import repository, schemas


def issue_token(settings: Settings, user: User) -> str:
    return create_token(settings, user.id)


async def signed_in(*, uow: UnitOfWork, settings: Settings, token: str) -> User:
    """The active user a token names; 401 for anything else."""
    try:
        user_id = decode_token(settings, token)
    except InvalidToken:
        raise Unauthorized("is invalid or expired") from None
    user = await repository.get_by_id(uow, user_id)
    if user is None or not user.is_active:
        # A deactivated account's tokens stop working on the next request.
        raise Unauthorized("is invalid or expired")
    return user


async def register(*, uow: UnitOfWork, settings: Settings, data: schemas.NewUser) -> User:
    taken = await repository.taken_fields(uow, username=data.username, email=data.email)
    if taken:
        raise Conflict(taken)
    user = await repository.add_user(
        uow,
        username=data.username,
        email=data.email,
        password_hash=await hash_password(settings, data.password),
        role=settings.default_role.value,
    )
    if user is None:
        # Lost a race with a concurrent registration: say which field is now taken.
        raise Conflict(
            await repository.taken_fields(uow, username=data.username, email=data.email)
            or {"username": ["has already been taken"]}
        )
    uow.readers.add(user.id)  # signed in with the token this returns, they read their account
    uow.after_commit(metrics.REGISTRATIONS.inc)
    return user


async def authenticate(
    *, uow: UnitOfWork, settings: Settings, login: str, password: str, by_username: bool = False
) -> User:
    if by_username:
        user = await repository.get_by_login(uow, login)
    else:
        user = await repository.get_by_email(uow, login)
    valid = await verify_password(settings, user.password_hash if user else None, password)
    if user is None or not valid:
        metrics.LOGIN_FAILURES.labels("unknown_user" if user is None else "wrong_password").inc()
        raise Unauthorized("invalid", field="credentials")
    if not user.is_active:
        # The same answer: a distinct one would confirm the password to whoever holds it.
        metrics.LOGIN_FAILURES.labels("deactivated").inc()
        raise Unauthorized("invalid", field="credentials")
    metrics.LOGINS.inc()
    return user


async def update(*, uow: UnitOfWork, settings: Settings, user: User, data: schemas.UpdateUser) -> User:
    # bio and image may be set to null; username, email and password left out stay as they are
    # (null is refused by the schema).
    values: dict[str, Any] = data.model_dump(include={"bio", "image"}, exclude_unset=True)
    if data.username is not None:
        if "@" in data.username and data.username != user.username:
            # As on registration; a name that has one already (from before) may be sent back as it is.
            raise Unprocessable({"username": ["can't contain @"]})
        values["username"] = data.username
    if data.email is not None:
        values["email"] = data.email
    taken = await repository.taken_fields(uow, username=data.username, email=data.email, exclude_id=user.id)
    if taken:
        raise Conflict(taken)
    if data.password is not None:
        values["password_hash"] = await hash_password(settings, data.password)
    try:
        async with uow.savepoint():
            await repository.update_fields(uow, user, values)
    except IntegrityError:
        # A concurrent request took the name or email between the check and the write; the
        # savepoint is gone, so we can ask again which one.
        raise Conflict(
            await repository.taken_fields(uow, username=data.username, email=data.email, exclude_id=user.id)
            or {"username": ["has already been taken"]}
        ) from None
    return user
