"""`/api/users`, `/api/users/login`, `/api/user` and the OAuth2 `/api/token`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from service.dependencies import CurrentUser, SettingsDep, UnitOfWorkDep
from service.ratelimit import LoginAttemptsDep
from service.responses import error_responses, json_response
from service.schemas import NoNul
from service.users import schemas, service, wire

router = APIRouter(tags=["User and Authentication"])


def _token_of(request: Request) -> str | None:
    # Echo the caller's own token back, as Conduit servers do, rather than minting a new one.
    header = request.headers.get("authorization", "")
    return header.partition(" ")[2].strip() or None


@router.post(
    "/users/login",
    operation_id="Login",
    summary="Existing user login",
    response_model=schemas.UserResponse,
    responses=error_responses(401, 422),
)
async def login(
    body: schemas.LoginUserRequest, uow: UnitOfWorkDep, settings: SettingsDep, attempts: LoginAttemptsDep
) -> Response:
    async with attempts.attempt(body.user.email):
        user = await service.authenticate(
            uow=uow, settings=settings, login=body.user.email, password=body.user.password
        )
    return json_response(wire.user(user, token=service.issue_token(settings, user)))


@router.post(
    "/users",
    operation_id="CreateUser",
    summary="Register a new user",
    status_code=201,
    response_model=schemas.UserResponse,
    responses=error_responses(409, 422),
)
async def register(body: schemas.NewUserRequest, uow: UnitOfWorkDep, settings: SettingsDep) -> Response:
    user = await service.register(uow=uow, settings=settings, data=body.user)
    return json_response(wire.user(user, token=service.issue_token(settings, user)), status_code=201)


@router.get(
    "/user",
    operation_id="GetCurrentUser",
    summary="Get current user",
    response_model=schemas.UserResponse,
    responses=error_responses(401, 422),
)
async def current_user(request: Request, user: CurrentUser, settings: SettingsDep) -> Response:
    return json_response(wire.user(user, token=_token_of(request) or service.issue_token(settings, user)))


@router.put(
    "/user",
    operation_id="UpdateCurrentUser",
    summary="Update current user",
    response_model=schemas.UserResponse,
    responses=error_responses(401, 409, 422),
)
async def update_current_user(
    request: Request,
    body: schemas.UpdateUserRequest,
    user: CurrentUser,
    uow: UnitOfWorkDep,
    settings: SettingsDep,
) -> Response:
    user = await service.update(uow=uow, settings=settings, user=user, data=body.user)
    return json_response(wire.user(user, token=_token_of(request) or service.issue_token(settings, user)))


@router.post(
    "/token",
    operation_id="IssueToken",
    summary="OAuth2 password flow (Swagger UI's Authorize button)",
    response_model=schemas.TokenResponse,
    responses=error_responses(401, 422),
)
async def issue_token(
    username: Annotated[str, Form(min_length=1, max_length=254, description="Email or username"), NoNul],
    password: Annotated[str, Form(min_length=1, max_length=256), NoNul],
    uow: UnitOfWorkDep,
    settings: SettingsDep,
    attempts: LoginAttemptsDep,
) -> Response:
    async with attempts.attempt(username):
        user = await service.authenticate(
            uow=uow, settings=settings, login=username, password=password, by_username=True
        )
    return json_response(wire.token(service.issue_token(settings, user), expires_in=settings.jwt_ttl_seconds))
