"""`/api/admin/users`: only admins; everyone else gets 403."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from service.admin import schemas, service, wire
from service.dependencies import AdminUser, UnitOfWorkDep
from service.responses import error_responses, json_response
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
    uow: UnitOfWorkDep,
    _admin: AdminUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Response:
    return json_response(wire.users(*await service.list_users(uow=uow, limit=limit, offset=offset)))


@router.get(
    "/{username}",
    operation_id="AdminGetUser",
    summary="Get one user",
    response_model=schemas.AdminUserResponse,
    responses=error_responses(401, 403, 404, 422),
)
async def get_user(username: Username, uow: UnitOfWorkDep, _admin: AdminUser) -> Response:
    return json_response(wire.user(await service.get_user(uow=uow, username=username)))


@router.patch(
    "/{username}",
    operation_id="AdminUpdateUser",
    summary="Change a user's role or deactivate (or reactivate) them",
    description="A deactivated user's tokens stop working at once, and they cannot log in. The last"
    " active admin cannot be demoted or deactivated (409).",
    response_model=schemas.AdminUserResponse,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def update_user(
    username: Username, body: schemas.AdminUserUpdateRequest, uow: UnitOfWorkDep, admin: AdminUser
) -> Response:
    user = await service.update_user(
        uow=uow, admin=admin, username=username, role=body.user.role, active=body.user.active
    )
    return json_response(wire.user(user))
