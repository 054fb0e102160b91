"""SQL for users and follows; the only place that queries those tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import insert_or_ignore
from service.models import Follow, User
from service.models.base import utcnow

# Every signed-in request loads its user: one statement, built once (see articles.repository).
_BY_ID = select(User).where(User.id == bindparam("id"))


async def get_by_id(session: AsyncSession, user_id: int) -> User | None:
    return (await session.execute(_BY_ID, {"id": user_id})).scalar_one_or_none()


async def get_by_username(session: AsyncSession, username: str) -> User | None:
    result = await session.execute(select(User).where(User.username == username))
    return result.scalar_one_or_none()


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.execute(select(User).where(User.email == email))
    return result.scalar_one_or_none()


async def get_by_login(session: AsyncSession, login: str) -> User | None:
    """An email or a username, for the OAuth2 form whose field is called `username`."""
    result = await session.execute(
        select(User).where((User.email == login.strip().lower()) | (User.username == login.strip()))
    )
    return result.scalars().first()


async def taken_fields(
    session: AsyncSession, *, username: str | None, email: str | None, exclude_id: int | None = None
) -> dict[str, list[str]]:
    """Which of username and email another user already has, as Conduit errors."""
    conditions = []
    if username is not None:
        conditions.append(User.username == username)
    if email is not None:
        conditions.append(User.email == email)
    if not conditions:
        return {}
    query = select(User.username, User.email).where(or_(*conditions))
    if exclude_id is not None:
        query = query.where(User.id != exclude_id)
    errors: dict[str, list[str]] = {}
    for row in await session.execute(query):
        if username is not None and row.username == username:
            errors["username"] = ["has already been taken"]
        if email is not None and row.email == email:
            errors["email"] = ["has already been taken"]
    return errors


async def add_user(
    session: AsyncSession, *, username: str, email: str, password_hash: str, role: str
) -> User | None:
    """Insert a user; None when a concurrent registration took the username or email first."""
    statement = (
        insert_or_ignore(session, User)
        .values(username=username, email=email, password_hash=password_hash, role=role, is_active=True)
        .returning(User.id)
    )
    user_id = (await session.execute(statement)).scalar_one_or_none()
    if user_id is None:
        return None
    return await session.get(User, user_id)


async def update_fields(session: AsyncSession, user: User, values: dict[str, Any]) -> None:
    for key, value in values.items():
        setattr(user, key, value)
    user.updated_at = utcnow()
    await session.flush()


async def list_page(session: AsyncSession, *, limit: int, offset: int) -> tuple[Sequence[User], int]:
    total = (await session.execute(select(func.count()).select_from(User))).scalar_one()
    rows = await session.execute(select(User).order_by(User.created_at, User.id).limit(limit).offset(offset))
    return rows.scalars().all(), total


async def is_following(session: AsyncSession, *, follower_id: int, followee_id: int) -> bool:
    result = await session.execute(
        select(Follow.follower_id).where(Follow.follower_id == follower_id, Follow.followee_id == followee_id)
    )
    return result.first() is not None


async def follow(session: AsyncSession, *, follower_id: int, followee_id: int) -> None:
    await session.execute(
        insert_or_ignore(session, Follow).values(follower_id=follower_id, followee_id=followee_id)
    )


async def unfollow(session: AsyncSession, *, follower_id: int, followee_id: int) -> None:
    await session.execute(
        delete(Follow).where(Follow.follower_id == follower_id, Follow.followee_id == followee_id)
    )
