"""create_app(): the only place that wires settings, database, cache, pipeline and routers together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from service import __version__, docs, observability, pipeline
from service.admin.endpoints import router as admin_router
from service.articles.endpoints import router as articles_router
from service.cache import InvalidateOnCommit, create_cache
from service.comments.endpoints import router as comments_router
from service.config import Settings, get_settings
from service.db import Database, create_engine
from service.health import router as health_router
from service.live import wiring as live_wiring
from service.live.commit import PublishOnCommit
from service.middleware import is_expected_failure
from service.observability.metrics import metrics_endpoint
from service.profiles.endpoints import router as profiles_router
from service.ratelimit import create_limiter
from service.replica import RecordWrites, Replica, create_write_log
from service.responses import JSON_MEDIA_TYPE, error_responses, install_error_handlers
from service.users.endpoints import router as users_router


class ConduitJSONResponse(JSONResponse):
    media_type = JSON_MEDIA_TYPE


DESCRIPTION = """
The [RealWorld Conduit](https://realworld-docs.netlify.app/) API, plus roles and user administration.

**Try it:** register with `POST /api/users`, then press **Authorize** and log in with your email
and password (OAuth2 password flow). Conduit clients send `Authorization: Token <jwt>`;
`Bearer <jwt>` works too. Every error is `{"errors": {"<field>": ["<message>"]}}`.

**Live updates:** a WebSocket at `GET /api/live` sends an article's new comments and favourite
counts, and the signed-in user's notifications, as they commit: see [its protocol](/docs/live).
"""


def create_app(settings: Settings | None = None, *, engine: AsyncEngine | None = None) -> FastAPI:
    settings = settings or get_settings()
    observability.setup_process(settings, expected_failures=is_expected_failure)
    engine = engine or create_engine(settings)
    observability.instrument_engine(engine)
    database = Database(engine, replica=_replica(settings, primary=engine))
    cache = create_cache(settings)
    limiter = create_limiter(settings)
    # Every commit invalidates what it wrote; live events (below) and jobs register here the same way.
    database.on_commit(InvalidateOnCommit(cache))
    if database.replica is not None:
        # And with a replica, records the position each user's next reads must see.
        database.on_commit(RecordWrites(database.replica.writes))

    # Live updates (service.live): the hub is the Publisher that units of work hand their events to.
    live = live_wiring.create_hub(settings, database) if settings.live_enabled else None
    if live is not None:
        # After the invalidation above: a client told of a change and re-fetching reads it fresh.
        database.on_commit(PublishOnCommit(live))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        database.start()
        if live is not None:
            await live_wiring.start(live)
        yield
        if live is not None:
            await live_wiring.stop(live)
        await database.close()
        await cache.close()
        if limiter is not None:
            await limiter.close()
        await engine.dispose()

    app = FastAPI(
        title="Inkwell",
        summary="A RealWorld Conduit API, run for real.",
        description=DESCRIPTION,
        version=__version__,
        lifespan=lifespan,
        default_response_class=ConduitJSONResponse,
        # The docs pages are service.docs' (offline, switchable); FastAPI's would load from a CDN.
        docs_url=None,
        redoc_url=None,
        openapi_url=docs.OPENAPI if settings.docs_enabled else None,
        # FastAPI's built-in OpenTelemetry would add a second server span and three more per
        # request; service.observability.tracing owns the request span.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.database = database
    app.state.cache = cache
    app.state.limiter = limiter
    app.state.live = live

    install_error_handlers(app)
    # Any request body can exceed the limit, and any request a rate limit: every operation documents both.
    api = APIRouter(prefix="/api", responses=error_responses(413, 429))
    for router in (users_router, profiles_router, articles_router, comments_router, admin_router):
        api.include_router(router)
    app.include_router(api)
    app.include_router(health_router)
    if live is not None:
        live_wiring.install(app, settings)
    if settings.metrics_enabled and not settings.metrics_port:
        # With a metrics port, `inkwell serve` serves them there and the public port never does.
        app.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    if settings.docs_enabled:
        docs.install(app)

    pipeline.install(app, settings, cache=cache, limiter=limiter)
    return app


def _replica(settings: Settings, *, primary: AsyncEngine) -> Replica | None:
    if not settings.database_read_url:
        return None
    engine = create_engine(settings, replica=True)
    observability.instrument_engine(engine)
    return Replica(engine, primary, writes=create_write_log(settings), settings=settings)
