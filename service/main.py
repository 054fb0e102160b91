"""create_app(): the only place that wires settings, database, middleware and routers together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from service import __version__, observability
from service.admin.endpoints import router as admin_router
from service.articles.endpoints import router as articles_router
from service.cache import PublicReadCache, create_cache
from service.comments.endpoints import router as comments_router
from service.config import Settings, get_settings
from service.db import create_engine, create_read_sessionmaker, create_sessionmaker
from service.errors import JSON_MEDIA_TYPE, error_responses, install_error_handlers
from service.health import router as health_router
from service.middleware import BodySizeLimitMiddleware
from service.profiles.endpoints import router as profiles_router
from service.users.endpoints import router as users_router


class ConduitJSONResponse(JSONResponse):
    media_type = JSON_MEDIA_TYPE


DESCRIPTION = """
The [RealWorld Conduit](https://realworld-docs.netlify.app/) API, plus roles and user administration.

**Try it:** register with `POST /api/users`, then press **Authorize** and log in with your email
and password (OAuth2 password flow). Conduit clients send `Authorization: Token <jwt>`;
`Bearer <jwt>` works too. Every error is `{"errors": {"<field>": ["<message>"]}}`.
"""


def create_app(settings: Settings | None = None, *, engine: AsyncEngine | None = None) -> FastAPI:
    settings = settings or get_settings()
    observability.setup_process(settings)
    engine = engine or create_engine(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.cache.close()
        await engine.dispose()

    app = FastAPI(
        title="Inkwell",
        summary="A RealWorld Conduit API, run for real.",
        description=DESCRIPTION,
        version=__version__,
        lifespan=lifespan,
        default_response_class=ConduitJSONResponse,
        swagger_ui_parameters={"persistAuthorization": True},
        # FastAPI's built-in OpenTelemetry would add a second server span and three more per
        # request; service.observability.tracing owns the request span.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.read_sessionmaker = create_read_sessionmaker(engine)
    app.state.cache = create_cache(settings)

    install_error_handlers(app)

    # Any request body can exceed the limit, so every operation documents the 413.
    api = APIRouter(prefix="/api", responses=error_responses(413))
    for router in (users_router, profiles_router, articles_router, comments_router, admin_router):
        api.include_router(router)
    app.include_router(api)
    app.include_router(health_router)

    # The last added runs first: CORS wraps everything, so even a 413 carries its CORS headers
    # and a browser client can read the error.
    # Innermost: a cache hit skips routing and the endpoint, and nothing else.
    app.add_middleware(PublicReadCache, cache=app.state.cache, routes=app.routes)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials="*" not in settings.cors_origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Requested-With", "X-Request-ID"],
        expose_headers=["X-Request-ID"],
        max_age=600,
    )
    observability.instrument_app(app, settings, engine)
    return app
