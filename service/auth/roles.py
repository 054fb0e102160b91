"""Who may do what: the three roles and their order, importable by any service without FastAPI."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class Role(StrEnum):
    viewer = "viewer"
    editor = "editor"
    admin = "admin"


class HasRole(Protocol):
    @property
    def role(self) -> str: ...


_RANK = {Role.viewer: 0, Role.editor: 1, Role.admin: 2}


def has_role(user: HasRole, role: Role) -> bool:
    """Whether the user's role is `role` or above it (an admin may do what an editor may)."""
    return _RANK[Role(user.role)] >= _RANK[role]
