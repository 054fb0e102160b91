"""`/api/profiles/{username}` and its `/follow`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from service.dependencies import CurrentUser, OptionalUser, UnitOfWorkDep
from service.profiles import schemas, service, wire
from service.responses import error_responses, json_response
from service.schemas import NoNul

router = APIRouter(prefix="/profiles", tags=["Profile"])

UsernamePath = Annotated[str, Path(description="Username of the profile"), NoNul]


@router.get(
    "/{username}",
    operation_id="GetProfileByUsername",
    summary="Get a profile",
    response_model=schemas.ProfileResponse,
    responses=error_responses(401, 404, 422),
)
async def get_profile(username: UsernamePath, uow: UnitOfWorkDep, viewer: OptionalUser) -> Response:
    return json_response(wire.profile(await service.get(uow=uow, username=username, viewer=viewer)))


@router.post(
    "/{username}/follow",
    operation_id="FollowUserByUsername",
    summary="Follow a user",
    response_model=schemas.ProfileResponse,
    responses=error_responses(401, 404, 422),
)
async def follow(username: UsernamePath, uow: UnitOfWorkDep, viewer: CurrentUser) -> Response:
    return json_response(wire.profile(await service.follow(uow=uow, username=username, viewer=viewer)))


@router.delete(
    "/{username}/follow",
    operation_id="UnfollowUserByUsername",
    summary="Unfollow a user",
    response_model=schemas.ProfileResponse,
    responses=error_responses(401, 404, 422),
)
async def unfollow(username: UsernamePath, uow: UnitOfWorkDep, viewer: CurrentUser) -> Response:
    return json_response(wire.profile(await service.unfollow(uow=uow, username=username, viewer=viewer)))
