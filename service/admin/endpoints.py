"""`/api/admin/users`: only admins; everyone else gets 403."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from service.admin import schemas, service
from service.auth.dependencies import AdminUser
from service.db import SessionDep
from service.errors import error_responses
from service.schemas import NoNul

router = APIRouter(prefix="/admin/users", tags=["Admin"])

Username = Annotated[str, Path(description="The user's username"), NoNul]


@router.get(
    "",
    operation_id="AdminListUsers",
    summary="List users, oldest first",
    response_model=schemas.AdminUsersResponse,
    responses=error_responses(401, 403, 422),
)
async def list_users(
    session: SessionDep,
    _admin: AdminUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> schemas.AdminUsersResponse:
    return await service.list_users(session=session, limit=limit, offset=offset)


@router.get(
    "/{username}",
    operation_id="AdminGetUser",
    summary="Get one user",
    response_model=schemas.AdminUserResponse,
    responses=error_responses(401, 403, 404, 422),
)
async def get_user(username: Username, session: SessionDep, _admin: AdminUser) -> schemas.AdminUserResponse:
    return schemas.AdminUserResponse(
        user=service.admin_user_out(await service.get_user(session=session, username=username))
    )


@router.patch(
    "/{username}",
    operation_id="AdminUpdateUser",
    summary="Change a user's role or deactivate (or reactivate) them",
    description="A deactivated user's tokens stop working at once, and they cannot log in.",
    response_model=schemas.AdminUserResponse,
    responses=error_responses(401, 403, 404, 422),
)
async def update_user(
    username: Username, body: schemas.AdminUserUpdateRequest, session: SessionDep, admin: AdminUser
) -> schemas.AdminUserResponse:
    user = await service.update_user(session=session, admin=admin, username=username, data=body.user)
    return schemas.AdminUserResponse(user=user)
