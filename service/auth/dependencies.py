"""Who is calling: `CurrentUser`, `OptionalUser` and `RequireRole(...)`, declared once and reused."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from service.auth.security import InvalidToken, decode_token
from service.config import Role, Settings
from service.db import SessionDep
from service.errors import Forbidden, Unauthorized
from service.models import User
from service.users import repository as users


class ConduitTokenScheme(OAuth2PasswordBearer):
    """Reads `Authorization: Token <jwt>` (Conduit) or `Bearer <jwt>` (OAuth2, Swagger UI)."""

    async def __call__(self, request: Request) -> str | None:  # type: ignore[override]
        header = request.headers.get("authorization")
        if not header:
            return None
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() not in {"token", "bearer"} or not credentials.strip():
            raise Unauthorized("is malformed; use 'Token <jwt>' or 'Bearer <jwt>'")
        return credentials.strip()


token_scheme = ConduitTokenScheme(
    tokenUrl="/api/token",
    scheme_name="OAuth2",
    auto_error=False,
    description="Log in with your email (or username) and password; the token is sent as Bearer.",
)


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
TokenDep = Annotated[str | None, Depends(token_scheme)]


async def get_optional_user(
    request: Request, token: TokenDep, session: SessionDep, settings: SettingsDep
) -> User | None:
    if token is None:
        return None
    try:
        user_id = decode_token(settings, token)
    except InvalidToken:
        raise Unauthorized("is invalid or expired") from None
    user = await users.get_by_id(session, user_id)
    if user is None or not user.is_active:
        # A deactivated account's tokens stop working on the next request.
        raise Unauthorized("is invalid or expired")
    request.state.user_id = user.id
    return user


async def get_current_user(user: Annotated[User | None, Depends(get_optional_user)]) -> User:
    if user is None:
        raise Unauthorized()
    return user


OptionalUser = Annotated[User | None, Depends(get_optional_user)]
CurrentUser = Annotated[User, Depends(get_current_user)]

_RANK = {Role.viewer: 0, Role.editor: 1, Role.admin: 2}


def has_role(user: User, role: Role) -> bool:
    return _RANK[Role(user.role)] >= _RANK[role]


def RequireRole(role: Role | str) -> Any:  # noqa: N802 - used like a type: Annotated[User, RequireRole("admin")]
    """The current user, refused with 403 unless their role is at least `role`."""
    needed = Role(role)

    async def _require(user: CurrentUser) -> User:
        if not has_role(user, needed):
            raise Forbidden("role", f"requires the {needed.value} role")
        return user

    return Depends(_require)


EditorUser = Annotated[User, RequireRole(Role.editor)]
AdminUser = Annotated[User, RequireRole(Role.admin)]
