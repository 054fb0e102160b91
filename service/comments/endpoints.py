"""`/api/articles/{slug}/comments` and `/api/articles/{slug}/comments/{id}`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from service import cache
from service.comments import schemas, service, wire
from service.dependencies import CurrentUser, OptionalUser, UnitOfWorkDep
from service.responses import error_responses, json_response
from service.schemas import NoNul

router = APIRouter(prefix="/articles/{slug}/comments", tags=["Comments"])

Slug = Annotated[str, Path(description="The article's slug"), NoNul]

# The most comments one response carries: without `limit`, the newest this many (the spec lists
# them all; one article with 20,000 comments was a 6 MB response). `offset` pages further.
MAX_COMMENTS = 500
MAX_OFFSET = 2**31 - 1


@router.get(
    "",
    operation_id="GetArticleComments",
    summary="Get comments for an article",
    description=(
        f"Newest first. Auth optional. At most {MAX_COMMENTS} comments per response: without `limit`, "
        f"the newest {MAX_COMMENTS}; `limit` and `offset` page through the rest."
    ),
    response_model=schemas.MultipleCommentsResponse,
    responses=error_responses(401, 404, 422),
)
@cache.cached(cache.ARTICLE_COMMENTS)
async def list_comments(
    slug: Slug,
    uow: UnitOfWorkDep,
    viewer: OptionalUser,
    limit: Annotated[
        int, Query(ge=1, le=MAX_COMMENTS, description="The number of comments to return")
    ] = MAX_COMMENTS,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="The number of comments to skip")] = 0,
) -> Response:
    rows = await service.list_for(uow=uow, slug=slug, viewer=viewer, limit=limit, offset=offset)
    return json_response(wire.comments(rows))


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
