"""What REST endpoints declare they need, as `Annotated` aliases declared once and reused: the
settings, the request's unit of work, and who is calling (`CurrentUser`, `OptionalUser`,
`RequireRole(...)`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from service.auth.roles import Role, has_role
from service.auth.security import InvalidToken, decode_token
from service.config import Settings
from service.db import Database, UnitOfWork
from service.errors import Forbidden, Unauthorized
from service.models import User
from service.replica import READ_AFTER
from service.users import service as users

# GET and HEAD only read: their unit of work refuses writes (and on PostgreSQL runs without a
# transaction); every other method writes, committed before the response is sent.
READ_ONLY_METHODS = frozenset({"GET", "HEAD"})


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    database: Database = request.app.state.database
    writable = request.method not in READ_ONLY_METHODS
    if writable or database.replica is None:
        async with database.unit_of_work(writable=writable) as uow:
            yield uow
        return
    # A read that may run on the replica: it must see its reader's last write (the token's user,
    # verified here only as far as routing needs; signing in checks it) and, when it builds a
    # cached response, the last write to the scopes that response is stored under.
    async with database.unit_of_work(
        writable=False,
        reader=_claimed_user(request),
        read_after=request.scope.get(READ_AFTER, 0),
    ) as uow:
        yield uow


def _claimed_user(request: Request) -> int | None:
    try:
        token = token_of(request.headers.get("authorization"))
        return None if token is None else decode_token(request.app.state.settings, token)
    except (Unauthorized, InvalidToken):
        return None


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
# scope="function": the unit commits (or refuses) before the response is sent, so a client is never
# told a write succeeded that did not commit, and its next read sees it.
UnitOfWorkDep = Annotated[UnitOfWork, Depends(unit_of_work, scope="function")]


def token_of(header: str | None) -> str | None:
    """The token in `Authorization: Token <jwt>` (Conduit) or `Bearer <jwt>` (OAuth2, Swagger UI);
    None without the header, 401 for anything else."""
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() not in {"token", "bearer"} or not credentials.strip():
        raise Unauthorized("is malformed; use 'Token <jwt>' or 'Bearer <jwt>'")
    return credentials.strip()


class ConduitTokenScheme(OAuth2PasswordBearer):
    """Reads the request's token (`token_of`), and documents the OAuth2 password flow."""

    async def __call__(self, request: Request) -> str | None:  # type: ignore[override]
        return token_of(request.headers.get("authorization"))


token_scheme = ConduitTokenScheme(
    tokenUrl="/api/token",
    scheme_name="OAuth2",
    auto_error=False,
    description="Log in with your email (or username) and password; the token is sent as Bearer.",
)

TokenDep = Annotated[str | None, Depends(token_scheme)]


async def get_optional_user(
    request: Request, token: TokenDep, uow: UnitOfWorkDep, settings: SettingsDep
) -> User | None:
    if token is None:
        return None
    user = await users.signed_in(uow=uow, settings=settings, token=token)
    request.state.user_id = user.id
    uow.readers.add(user.id)  # what they write, their next reads see
    return user


async def get_current_user(user: Annotated[User | None, Depends(get_optional_user)]) -> User:
    if user is None:
        raise Unauthorized()
    return user


OptionalUser = Annotated[User | None, Depends(get_optional_user)]
CurrentUser = Annotated[User, Depends(get_current_user)]


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
