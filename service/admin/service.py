"""Role changes and deactivation, with the guard rails an admin expects."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from service.admin import schemas
from service.config import Role
from service.errors import NotFound, Unprocessable
from service.models import User
from service.users import repository as users


def admin_user_out(user: User) -> schemas.AdminUser:
    return schemas.AdminUser(
        username=user.username,
        email=user.email,
        bio=user.bio,
        image=user.image,
        role=Role(user.role),
        active=user.is_active,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


async def list_users(*, session: AsyncSession, limit: int, offset: int) -> schemas.AdminUsersResponse:
    page, total = await users.list_page(session, limit=limit, offset=offset)
    return schemas.AdminUsersResponse(users=[admin_user_out(user) for user in page], users_count=total)


async def get_user(*, session: AsyncSession, username: str) -> User:
    user = await users.get_by_username(session, username)
    if user is None:
        raise NotFound("user")
    return user


async def update_user(
    *, session: AsyncSession, admin: User, username: str, data: schemas.AdminUserUpdate
) -> schemas.AdminUser:
    user = await get_user(session=session, username=username)
    values: dict[str, object] = {}
    if data.role is not None:
        values["role"] = data.role.value
    if data.active is not None:
        values["is_active"] = data.active
    # An admin who demotes or locks out themselves may leave nobody able to undo it.
    if user.id == admin.id and (values.get("role", "admin") != "admin" or values.get("is_active") is False):
        raise Unprocessable({"user": ["admins cannot demote or deactivate themselves"]})
    if values:
        await users.update_fields(session, user, values)
    return admin_user_out(user)
