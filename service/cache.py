"""Public reads (article lists, articles, comments, tags) served from a cache of their JSON, which
every commit that changed the rows they are built from invalidates before the writer is answered.

Invalidation is by generation: each scope ("articles", "comments") has a counter that is part of
every cached key, and a commit that wrote one of the scope's tables increments it, once before the
commit (so a write never commits while the cache cannot be invalidated) and once after (so a read
that raced the commit, and cached what it saw before it, is never served again). The tables a
commit wrote are seen by SQLAlchemy's events, so no write path can forget to invalidate.

Backends: Redis (INKWELL_REDIS_URL) shared by every process and pod; in-process otherwise, which is
only coherent in a single process, so it is used only in development and test with one worker.
With Redis unreachable, reads skip the cache and writes answer 503: a write that could not be
invalidated could be hidden by a stale read. Cached entries also expire (cache_ttl_seconds), which
bounds what a Redis failure between a commit and its second increment could leave behind.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi.routing import iter_route_contexts
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.config import Settings
from service.errors import JSON_MEDIA_TYPE
from service.observability.metrics import CACHE_ERRORS, CACHE_LOOKUPS

ARTICLES = "articles"
COMMENTS = "comments"
# What each table's rows appear in. Comments are listed by article slug and show their author;
# follows never change a public response (`following` is false for anonymous readers).
TABLE_SCOPES: dict[str, frozenset[str]] = {
    "articles": frozenset({ARTICLES, COMMENTS}),
    "article_tags": frozenset({ARTICLES}),
    "tags": frozenset({ARTICLES}),
    "favorites": frozenset({ARTICLES}),
    "comments": frozenset({COMMENTS}),
    "users": frozenset({ARTICLES, COMMENTS}),
}
_SCOPES_KEY = "inkwell_cache_scopes"


class CacheUnavailable(Exception):
    """The cache's store cannot be reached."""


@dataclass(frozen=True)
class Slot:
    """Where a value read under a generation is stored, should it have to be built."""

    scope: str
    key: str
    generation: int


class Backend(Protocol):
    async def get(self, scope: str, key: str) -> tuple[Slot, bytes | None]: ...
    async def put(self, slot: Slot, value: bytes) -> None: ...
    async def invalidate(self, scopes: Iterable[str]) -> None: ...
    async def close(self) -> None: ...


class LocalBackend:
    """Generations and values in this process, least recently used values evicted first."""

    def __init__(self, *, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.generations: dict[str, int] = {}
        self.values: OrderedDict[tuple[str, int, str], tuple[float, bytes]] = OrderedDict()

    async def get(self, scope: str, key: str) -> tuple[Slot, bytes | None]:
        slot = Slot(scope, key, self.generations.get(scope, 0))
        found = self.values.get((scope, slot.generation, key))
        if found is None or found[0] < time.monotonic():
            return slot, None
        self.values.move_to_end((scope, slot.generation, key))
        return slot, found[1]

    async def put(self, slot: Slot, value: bytes) -> None:
        self.values[(slot.scope, slot.generation, slot.key)] = (time.monotonic() + self.ttl, value)
        while len(self.values) > self.max_entries:
            self.values.popitem(last=False)

    async def invalidate(self, scopes: Iterable[str]) -> None:
        for scope in scopes:
            self.generations[scope] = self.generations.get(scope, 0) + 1

    async def close(self) -> None:
        self.values.clear()


# One round trip per read: the scope's generation and the value stored under it.
_GET = """
local generation = redis.call('GET', KEYS[1]) or '0'
return {generation, redis.call('GET', KEYS[2] .. generation .. ':' .. ARGV[1])}
"""

# Every scope's generation in one command (a pipeline of INCRs costs half as much CPU again).
_INCREMENT = "for _, key in ipairs(KEYS) do redis.call('INCR', key) end"


class RedisBackend:
    def __init__(self, url: str, *, ttl: float, timeout: float = 0.5) -> None:
        from redis.asyncio import Redis

        self.ttl = max(int(ttl), 1)
        self.redis = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self.lookup = self.redis.register_script(_GET)
        self.increment = self.redis.register_script(_INCREMENT)

    async def get(self, scope: str, key: str) -> tuple[Slot, bytes | None]:
        from redis.exceptions import RedisError

        try:
            generation, value = await self.lookup(
                keys=[f"inkwell:{scope}:gen", f"inkwell:{scope}:"], args=[key]
            )
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(str(exc)) from exc
        return Slot(scope, key, int(generation)), value

    async def put(self, slot: Slot, value: bytes) -> None:
        from redis.exceptions import RedisError

        try:
            await self.redis.set(f"inkwell:{slot.scope}:{slot.generation}:{slot.key}", value, ex=self.ttl)
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(str(exc)) from exc

    async def invalidate(self, scopes: Iterable[str]) -> None:
        from redis.exceptions import RedisError

        try:
            await self.increment(keys=[f"inkwell:{scope}:gen" for scope in scopes])
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(str(exc)) from exc

    async def close(self) -> None:
        await self.redis.aclose()


class ResponseCache:
    def __init__(self, backend: Backend | None) -> None:
        self.backend = backend

    async def invalidate(self, scopes: Iterable[str]) -> None:
        if self.backend is not None:
            try:
                await self.backend.invalidate(scopes)
            except CacheUnavailable:
                CACHE_ERRORS.labels("invalidate").inc()
                raise

    async def close(self) -> None:
        if self.backend is not None:
            await self.backend.close()


# The public reads that are cached, by route template, and the scope whose writes invalidate them.
CACHED_ROUTES = {
    "/api/articles": ARTICLES,
    "/api/articles/{slug}": ARTICLES,
    "/api/articles/{slug}/comments": COMMENTS,
    "/api/tags": ARTICLES,
}
_CACHED_PATHS = re.compile(r"^/api/(?:tags|articles(?:/(?P<slug>[^/]+)(?P<comments>/comments)?)?)$")


class PublicReadCache:
    """Answers anonymous GETs of the cached routes from the cache, before routing, dependencies and
    the endpoint; on a miss, the app answers and a 200 from the route the key names is stored.

    Inside the metrics, tracing and logging middleware, so a hit is counted, traced and logged like
    any request, under the route template it would have matched (set here as `scope["route"]`).
    """

    def __init__(self, app: ASGIApp, *, cache: ResponseCache, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.cache = cache
        self.routes = routes
        self.by_template: dict[str, Any] = {}

    def _route(self, template: str) -> Any:
        if not self.by_template:
            self.by_template = {
                context.path: context.original_route
                for context in iter_route_contexts(self.routes)
                if context.path in CACHED_ROUTES and "GET" in getattr(context.original_route, "methods", ())
            }
        return self.by_template.get(template)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        backend = self.cache.backend
        if backend is None or scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        match = _CACHED_PATHS.match(scope["path"])
        # Signed-in responses say what the reader follows and favours: never shared.
        if match is None or any(name == b"authorization" for name, _ in scope["headers"]):
            await self.app(scope, receive, send)
            return
        if match["comments"]:
            template = "/api/articles/{slug}/comments"
        elif match["slug"]:
            template = "/api/articles/{slug}"
        else:
            template = scope["path"]
        cache_scope = CACHED_ROUTES[template]
        key = f"{scope['path']}?{scope['query_string'].decode('latin-1')}"
        try:
            slot, value = await backend.get(cache_scope, key)
        except CacheUnavailable:
            CACHE_ERRORS.labels("get").inc()
            await self.app(scope, receive, send)
            return
        if value is not None:
            CACHE_LOOKUPS.labels(cache_scope, "hit").inc()
            scope["route"] = self._route(template)
            headers = [
                (b"content-length", str(len(value)).encode()),
                (b"content-type", JSON_MEDIA_TYPE.encode()),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": value})
            return
        CACHE_LOOKUPS.labels(cache_scope, "miss").inc()
        status = 0
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        # Only what the named route answered in full ("feed" is a slug to the regex, not a route).
        if status == 200 and scope.get("route") is self._route(template):
            try:
                await backend.put(slot, b"".join(chunks))
            except CacheUnavailable:
                CACHE_ERRORS.labels("put").inc()


def create_cache(settings: Settings) -> ResponseCache:
    if not settings.cache_enabled:
        return ResponseCache(None)
    if settings.redis_url:
        return ResponseCache(RedisBackend(settings.redis_url, ttl=settings.cache_ttl_seconds))
    if settings.environment in {"development", "test"}:
        return ResponseCache(LocalBackend(ttl=settings.cache_ttl_seconds))
    # Several pods each with its own in-process cache would serve each other's stale reads.
    return ResponseCache(None)


def written_scopes(session: Any) -> frozenset[str]:
    """The scopes the session's transaction wrote to, forgotten once read."""
    return frozenset(session.info.pop(_SCOPES_KEY, ()))


def _note(session: Session, table: str) -> None:
    scopes = TABLE_SCOPES.get(table)
    if scopes:
        session.info.setdefault(_SCOPES_KEY, set()).update(scopes)


@event.listens_for(Session, "do_orm_execute")
def _on_statement(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if table is not None:
            _note(state.session, table.name)


@event.listens_for(Session, "after_flush")
def _on_flush(session: Session, _flush: UOWTransaction) -> None:
    for instance in (*session.new, *session.dirty, *session.deleted):
        _note(session, instance.__table__.name)


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(_SCOPES_KEY, None)
