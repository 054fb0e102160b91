"""Role changes and deactivation, with the guard rails an admin expects."""

from __future__ import annotations

from collections.abc import Sequence

from service.auth.roles import Role
from service.db import UnitOfWork
from service.errors import NotFound, Unprocessable
from service.models import User
from service.users import repository as users


async def list_users(*, uow: UnitOfWork, limit: int, offset: int) -> tuple[Sequence[User], int]:
    """A page of users, oldest first, and how many there are."""
    return await users.list_page(uow, limit=limit, offset=offset)


async def get_user(*, uow: UnitOfWork, username: str) -> User:
    user = await users.get_by_username(uow, username)
    if user is None:
        raise NotFound("user")
    return user


async def update_user(
    *, uow: UnitOfWork, admin: User, username: str, role: Role | None, active: bool | None
) -> User:
    user = await get_user(uow=uow, username=username)
    values: dict[str, object] = {}
    if role is not None:
        values["role"] = role.value
    if active is not None:
        values["is_active"] = active
    # An admin who demotes or locks out themselves may leave nobody able to undo it.
    if user.id == admin.id and (values.get("role", "admin") != "admin" or values.get("is_active") is False):
        raise Unprocessable({"user": ["admins cannot demote or deactivate themselves"]})
    if values:
        await users.update_fields(uow, user, values)
        # A deactivated user's next request is refused, and a new role holds, on every replica too.
        uow.readers.add(user.id)
    return user
