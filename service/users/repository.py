"""SQL for users and follows; the only place that queries those tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, bindparam, delete, func, or_, select

from service.db import UnitOfWork
from service.models import Follow, User
from service.models.base import utcnow

# Every signed-in request loads its user: one statement, built once (see articles.repository).
_BY_ID = select(User).where(User.id == bindparam("id"))


async def get_by_id(uow: UnitOfWork, user_id: int) -> User | None:
    return (await uow.read.entities(_BY_ID, {"id": user_id})).one_or_none()


async def get_by_username(uow: UnitOfWork, username: str) -> User | None:
    return (await uow.read.entities(select(User).where(User.username == username))).one_or_none()


async def get_by_email(uow: UnitOfWork, email: str) -> User | None:
    return (await uow.read.entities(select(User).where(User.email == email))).one_or_none()


# Usernames are unique in any case (migration 0003's index on lower(username) serves this).
BY_USERNAME_IN_ANY_CASE = select(User).where(
    func.lower(User.username) == func.lower(bindparam("username", type_=String))
)


async def get_by_login(uow: UnitOfWork, login: str) -> User | None:
    """An email or a username, for the OAuth2 form whose field is called `username`. With an `@`
    it is an email first: usernames registered before `@` was refused in them may look like one,
    and whoever took someone's email as their name must not take over that person's login."""
    login = login.strip()
    if "@" in login:
        user = await get_by_email(uow, login.lower())
        if user is not None:
            return user
    return (await uow.read.entities(BY_USERNAME_IN_ANY_CASE, {"username": login})).one_or_none()


async def taken_fields(
    uow: UnitOfWork, *, username: str | None, email: str | None, exclude_id: int | None = None
) -> dict[str, list[str]]:
    """Which of username and email another user already has, as Conduit errors: a username in any
    case (`JAKE` is `jake`'s); emails are stored lower-cased, and compared so."""
    conditions = []
    if username is not None:
        conditions.append(func.lower(User.username) == func.lower(username))
    if email is not None:
        conditions.append(User.email == email)
    if not conditions:
        return {}
    query = select(User.username, User.email).where(or_(*conditions))
    if exclude_id is not None:
        query = query.where(User.id != exclude_id)
    errors: dict[str, list[str]] = {}
    for row in await uow.read.rows(query):
        if username is not None and row.username.lower() == username.lower():
            errors["username"] = ["has already been taken"]
        if email is not None and row.email == email:
            errors["email"] = ["has already been taken"]
    return errors


async def add_user(
    uow: UnitOfWork, *, username: str, email: str, password_hash: str, role: str
) -> User | None:
    """Insert a user; None when a concurrent registration took the username or email first."""
    statement = (
        uow.dialect.insert_or_ignore(User)
        .values(username=username, email=email, password_hash=password_hash, role=role, is_active=True)
        .returning(User.id)
    )
    user_id = (await uow.write(statement)).scalar_one_or_none()
    if user_id is None:
        return None
    return await uow.read.get(User, user_id)


async def update_fields(uow: UnitOfWork, user: User, values: dict[str, Any]) -> None:
    for key, value in values.items():
        setattr(user, key, value)
    user.updated_at = utcnow()
    await uow.save()


# Every active admin's row, locked until the commit, always in the same order (see admin.service).
_LOCK_ACTIVE_ADMINS = (
    select(User.id).where(User.role == "admin", User.is_active.is_(True)).order_by(User.id).with_for_update()
)


async def lock_active_admins(uow: UnitOfWork) -> list[int]:
    """The ids of the active admins as of now, their rows locked against a concurrent change; a
    row another transaction changed is read as that transaction committed it."""
    return list((await uow.read.rows(_LOCK_ACTIVE_ADMINS)).scalars())


async def list_page(uow: UnitOfWork, *, limit: int, offset: int) -> tuple[Sequence[User], int]:
    total = (await uow.read.rows(select(func.count()).select_from(User))).scalar_one()
    page = select(User).order_by(User.created_at, User.id).limit(limit).offset(offset)
    return (await uow.read.entities(page)).all(), total


async def is_following(uow: UnitOfWork, *, follower_id: int, followee_id: int) -> bool:
    query = select(Follow.follower_id).where(
        Follow.follower_id == follower_id, Follow.followee_id == followee_id
    )
    return (await uow.read.rows(query)).first() is not None


async def follow(uow: UnitOfWork, *, follower_id: int, followee_id: int) -> bool:
    """Whether this added the follow (False: it was there already)."""
    statement = (
        uow.dialect.insert_or_ignore(Follow)
        .values(follower_id=follower_id, followee_id=followee_id)
        .returning(Follow.follower_id)
    )
    return (await uow.write(statement)).first() is not None


async def unfollow(uow: UnitOfWork, *, follower_id: int, followee_id: int) -> bool:
    """Whether this removed the follow (False: there was none)."""
    statement = (
        delete(Follow)
        .where(Follow.follower_id == follower_id, Follow.followee_id == followee_id)
        .returning(Follow.follower_id)
    )
    return (await uow.write(statement)).first() is not None
