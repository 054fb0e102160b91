"""`/api/articles/{slug}/comments` and `/api/articles/{slug}/comments/{id}`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from service import cache
from service.comments import schemas, service, wire
from service.dependencies import CurrentUser, OptionalUser, UnitOfWorkDep
from service.responses import error_responses, json_response
from service.schemas import NoNul

router = APIRouter(prefix="/articles/{slug}/comments", tags=["Comments"])

Slug = Annotated[str, Path(description="The article's slug"), NoNul]


@router.get(
    "",
    operation_id="GetArticleComments",
    summary="Get comments for an article",
    description="Newest first. Auth optional.",
    response_model=schemas.MultipleCommentsResponse,
    responses=error_responses(401, 404, 422),
)
@cache.cached(cache.ARTICLE_COMMENTS)
async def list_comments(slug: Slug, uow: UnitOfWorkDep, viewer: OptionalUser) -> Response:
    return json_response(wire.comments(await service.list_for(uow=uow, slug=slug, viewer=viewer)))


@router.post(
    "",
    operation_id="CreateArticleComment",
    summary="Create a comment for an article",
    status_code=201,
    response_model=schemas.SingleCommentResponse,
    responses=error_responses(401, 404, 409, 422),
)
async def add_comment(
    slug: Slug, body: schemas.NewCommentRequest, uow: UnitOfWorkDep, author: CurrentUser
) -> Response:
    row = await service.add(uow=uow, slug=slug, author=author, data=body.comment)
    return json_response(wire.comment(row), status_code=201)


@router.delete(
    "/{id}",
    operation_id="DeleteArticleComment",
    summary="Delete a comment for an article",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 403, 404, 422),
)
async def delete_comment(
    slug: Slug,
    id: Annotated[int, Path(description="ID of the comment")],  # noqa: A002 - the spec's parameter name
    uow: UnitOfWorkDep,
    user: CurrentUser,
) -> Response:
    await service.delete(uow=uow, slug=slug, comment_id=id, user=user)
    return Response(status_code=204)
