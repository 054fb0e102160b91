"""Role changes and deactivation, with the guard rails an admin expects.

The one that matters most: there is always an active admin. A change that takes an active admin's
role or account away first locks every active admin's row (`SELECT ... FOR UPDATE`, in id order,
so two such changes never deadlock) and decides on what it locked. Two admins demoting each other
at the same moment both passed a check made without the lock (5 of 6 tries left no admin); with
it, the second waits for the first, then sees one admin fewer and is refused. On SQLite every
write transaction already runs alone (BEGIN IMMEDIATE), and FOR UPDATE is left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.auth.roles import Role
from service.db import UnitOfWork
from service.errors import Conflict, Forbidden, NotFound
from service.live import emit
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
    if values.get("role", Role.admin.value) != Role.admin.value or values.get("is_active") is False:
        await _keep_an_active_admin(uow, admin=admin, user=user)
    if values:
        deactivated = user.is_active and values.get("is_active") is False
        await users.update_fields(uow, user, values)
        # A deactivated user's next request is refused, and a new role holds, on every replica too.
        uow.readers.add(user.id)
        if deactivated:  # and their open live sockets are closed
            emit.user_deactivated(uow, user_id=user.id)
    return user


async def _keep_an_active_admin(uow: UnitOfWork, *, admin: User, user: User) -> None:
    """Refuses a demotion or deactivation that would leave no active admin, or that an admin makes
    after losing the role themselves (a concurrent change): decided on the locked rows."""
    admins = await users.lock_active_admins(uow)
    if admin.id not in admins:
        # Demoted or deactivated while this request ran: refused as their next request would be.
        raise Forbidden("role", f"requires the {Role.admin.value} role")
    if user.id in admins and len(admins) == 1:
        # Nobody would be left to undo it (an admin stepping down, while others remain, may).
        raise Conflict({"user": ["is the last active admin"]})
