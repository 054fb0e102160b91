"""Admin views of users: everything Conduit's public profile hides (email, role, active)."""

from __future__ import annotations

from service.auth.roles import Role
from service.schemas import Timestamp, WireModel


class AdminUser(WireModel):
    username: str
    email: str
    bio: str | None
    image: str | None
    role: Role
    active: bool
    created_at: Timestamp
    updated_at: Timestamp


class AdminUserResponse(WireModel):
    user: AdminUser


class AdminUsersResponse(WireModel):
    users: list[AdminUser]
    users_count: int


class AdminUserUpdate(WireModel):
    role: Role | None = None
    active: bool | None = None


class AdminUserUpdateRequest(WireModel):
    user: AdminUserUpdate
