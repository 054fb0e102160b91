"""`/api/articles/{slug}/comments` and `/api/articles/{slug}/comments/{id}`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from service.auth.dependencies import CurrentUser, OptionalUser
from service.comments import schemas, service
from service.db import SessionDep
from service.errors import error_responses
from service.schemas import NoNul, json_response

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
async def list_comments(slug: Slug, session: SessionDep, viewer: OptionalUser) -> Response:
    return json_response(await service.list_for(session=session, slug=slug, viewer=viewer))


@router.post(
    "",
    operation_id="CreateArticleComment",
    summary="Create a comment for an article",
    status_code=201,
    response_model=schemas.SingleCommentResponse,
    responses=error_responses(401, 404, 409, 422),
)
async def add_comment(
    slug: Slug, body: schemas.NewCommentRequest, session: SessionDep, author: CurrentUser
) -> schemas.SingleCommentResponse:
    return schemas.SingleCommentResponse(
        comment=await service.add(session=session, slug=slug, author=author, data=body.comment)
    )


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
    session: SessionDep,
    user: CurrentUser,
) -> Response:
    await service.delete(session=session, slug=slug, comment_id=id, user=user)
    return Response(status_code=204)
