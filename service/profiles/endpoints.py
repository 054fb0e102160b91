"""`/api/profiles/{username}` and its `/follow`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel

from service.auth.dependencies import CurrentUser, OptionalUser
from service.db import SessionDep
from service.errors import error_responses
from service.profiles import service
from service.schemas import NoNul, Profile

router = APIRouter(prefix="/profiles", tags=["Profile"])

UsernamePath = Annotated[str, Path(description="Username of the profile"), NoNul]


class ProfileResponse(BaseModel):
    profile: Profile


@router.get(
    "/{username}",
    operation_id="GetProfileByUsername",
    summary="Get a profile",
    response_model=ProfileResponse,
    responses=error_responses(401, 404, 422),
)
async def get_profile(username: UsernamePath, session: SessionDep, viewer: OptionalUser) -> ProfileResponse:
    return ProfileResponse(profile=await service.get(session=session, username=username, viewer=viewer))


@router.post(
    "/{username}/follow",
    operation_id="FollowUserByUsername",
    summary="Follow a user",
    response_model=ProfileResponse,
    responses=error_responses(401, 404, 422),
)
async def follow(username: UsernamePath, session: SessionDep, viewer: CurrentUser) -> ProfileResponse:
    return ProfileResponse(profile=await service.follow(session=session, username=username, viewer=viewer))


@router.delete(
    "/{username}/follow",
    operation_id="UnfollowUserByUsername",
    summary="Unfollow a user",
    response_model=ProfileResponse,
    responses=error_responses(401, 404, 422),
)
async def unfollow(username: UsernamePath, session: SessionDep, viewer: CurrentUser) -> ProfileResponse:
    return ProfileResponse(profile=await service.unfollow(session=session, username=username, viewer=viewer))
