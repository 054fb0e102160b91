"""Users as admins see them (email, role, active), in the API's wire format."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service import wire
from service.models import User


def _user(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "email": user.email,
        "bio": user.bio,
        "image": user.image,
        "role": user.role,
        "active": user.is_active,
        "createdAt": wire.timestamp(user.created_at),
        "updatedAt": wire.timestamp(user.updated_at),
    }


def user(user: User) -> dict[str, Any]:
    return {"user": _user(user)}


def users(page: Sequence[User], total: int) -> dict[str, Any]:
    return {"users": [_user(user) for user in page], "usersCount": total}
