"""`/api/articles`, `/api/articles/feed`, `/api/articles/{slug}` and its `/favorite`, and `/api/tags`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute

from service import cache
from service.articles import schemas, service, wire
from service.dependencies import CurrentUser, EditorUser, OptionalUser, UnitOfWorkDep
from service.responses import error_responses, json_response
from service.schemas import NoNul

router = APIRouter(tags=["Articles"])

MAX_LIMIT = 100
MAX_OFFSET = 2**31 - 1

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="The number of articles to return")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="The number of articles to skip")]
Slug = Annotated[str, Path(description="The article's slug"), NoNul]

ARTICLE_OPERATION = "GetArticle"


def reserved_segments(
    routes: Sequence[BaseRoute], *, operation_id: str = ARTICLE_OPERATION
) -> frozenset[str]:
    """The words a slug may not be: every fixed path segment that sits where the article's `{slug}`
    does, after the same prefix (`feed` of `/api/articles/feed`). An article slugged so could
    never be read, the fixed route answering first. Read from the app's own routes (those left
    out of the OpenAPI document too), so a route added later is reserved with it: no list to
    keep in step."""
    paths = [context.path for context in iter_route_contexts(routes) if context.path]
    article = next(
        path
        for context in iter_route_contexts(routes)
        if getattr(context, "operation_id", None) == operation_id and (path := context.path)
    ).split("/")
    at = article.index("{slug}")
    reserved: set[str] = set()
    for path in paths:
        parts = path.split("/")
        if len(parts) <= at or parts[at].startswith("{"):
            continue
        before = zip(article[:at], parts[:at], strict=True)
        if all(ours == theirs or "{" in ours or "{" in theirs for ours, theirs in before):
            reserved.add(parts[at].lower())
    return frozenset(reserved)


def _reserved(request: Request) -> frozenset[str]:
    # Once per app, as `responses._allowed_methods` reads its table.
    app: FastAPI = request.app
    found: frozenset[str] | None = getattr(app.state, "reserved_slugs", None)
    if found is None:
        found = app.state.reserved_slugs = reserved_segments(app.routes)
    return found


@router.get(
    "/articles",
    operation_id="GetArticles",
    summary="Get recent articles globally",
    description="Most recent first; filter by `tag`, `author` or `favorited` (a username). Auth optional.",
    response_model=schemas.MultipleArticlesResponse,
    responses=error_responses(401, 422),
)
@cache.cached(cache.ARTICLE_LISTS)
async def list_articles(
    uow: UnitOfWorkDep,
    viewer: OptionalUser,
    tag: Annotated[str | None, Query(max_length=64), NoNul] = None,
    author: Annotated[str | None, Query(max_length=64), NoNul] = None,
    favorited: Annotated[str | None, Query(max_length=64), NoNul] = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Response:
    filters = schemas.ArticleFilter(tag=tag, author=author, favorited=favorited)
    page = await service.list_articles(uow=uow, filters=filters, viewer=viewer, limit=limit, offset=offset)
    return json_response(wire.articles(page))


@router.get(
    "/articles/feed",
    operation_id="GetArticlesFeed",
    summary="Get recent articles from users you follow",
    response_model=schemas.MultipleArticlesResponse,
    responses=error_responses(401, 422),
)
async def feed(uow: UnitOfWorkDep, viewer: CurrentUser, limit: Limit = 20, offset: Offset = 0) -> Response:
    filters = schemas.ArticleFilter(feed_of=viewer.id)
    page = await service.list_articles(uow=uow, filters=filters, viewer=viewer, limit=limit, offset=offset)
    return json_response(wire.articles(page))


@router.post(
    "/articles",
    operation_id="CreateArticle",
    summary="Create an article",
    status_code=201,
    response_model=schemas.SingleArticleResponse,
    responses=error_responses(401, 403, 409, 422),
)
async def create_article(
    request: Request, body: schemas.NewArticleRequest, uow: UnitOfWorkDep, author: EditorUser
) -> Response:
    article = await service.create(uow=uow, author=author, data=body.article, reserved=_reserved(request))
    return json_response(wire.article(article), status_code=201)


@router.get(
    "/articles/{slug}",
    operation_id="GetArticle",
    summary="Get an article",
    response_model=schemas.SingleArticleResponse,
    responses=error_responses(401, 404, 422),
)
@cache.cached(cache.ONE_ARTICLE)
async def get_article(slug: Slug, uow: UnitOfWorkDep, viewer: OptionalUser) -> Response:
    return json_response(wire.article(await service.get(uow=uow, slug=slug, viewer=viewer)))


@router.put(
    "/articles/{slug}",
    operation_id="UpdateArticle",
    summary="Update an article",
    description="The author (an editor) or an admin. A new title gives the article a new slug.",
    response_model=schemas.SingleArticleResponse,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def update_article(
    request: Request, slug: Slug, body: schemas.UpdateArticleRequest, uow: UnitOfWorkDep, user: EditorUser
) -> Response:
    article = await service.update(
        uow=uow, slug=slug, user=user, data=body.article, reserved=_reserved(request)
    )
    return json_response(wire.article(article))


@router.delete(
    "/articles/{slug}",
    operation_id="DeleteArticle",
    summary="Delete an article",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def delete_article(slug: Slug, uow: UnitOfWorkDep, user: EditorUser) -> Response:
    await service.delete(uow=uow, slug=slug, user=user)
    return Response(status_code=204)


@router.post(
    "/articles/{slug}/favorite",
    operation_id="CreateArticleFavorite",
    summary="Favorite an article",
    tags=["Favorites"],
    response_model=schemas.SingleArticleResponse,
    responses=error_responses(401, 404, 409, 422),
)
async def favorite(slug: Slug, uow: UnitOfWorkDep, user: CurrentUser) -> Response:
    return json_response(wire.article(await service.favorite(uow=uow, slug=slug, user=user, on=True)))


@router.delete(
    "/articles/{slug}/favorite",
    operation_id="DeleteArticleFavorite",
    summary="Unfavorite an article",
    tags=["Favorites"],
    response_model=schemas.SingleArticleResponse,
    responses=error_responses(401, 404, 409, 422),
)
async def unfavorite(slug: Slug, uow: UnitOfWorkDep, user: CurrentUser) -> Response:
    return json_response(wire.article(await service.favorite(uow=uow, slug=slug, user=user, on=False)))


@router.get(
    "/tags",
    operation_id="GetTags",
    summary="Get tags",
    tags=["Tags"],
    response_model=schemas.TagsResponse,
    responses=error_responses(422),
)
@cache.cached(cache.ARTICLE_LISTS)
async def get_tags(uow: UnitOfWorkDep) -> Response:
    return json_response(wire.tags(await service.tags(uow=uow)))
