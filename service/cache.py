"""Public reads (article lists, articles, comments, tags) served from a cache of their JSON, which
every commit that changed the rows they are built from invalidates before the writer is answered.

Invalidation is by generation. Each cached response is stored under the current generations of
the scopes it is built from: the lists (article lists and tags), or every article and this one
(`article:<slug>`), or every article's comments and this article's (`comments:<slug>`). A commit
that wrote one of a scope's tables gives the scope a new generation, once before the commit (so a
write never commits while the cache cannot be invalidated) and once after (so a read that raced
the commit, and cached what it saw before it, is never served again). The tables a commit wrote
are seen by SQLAlchemy's events, so no write path can forget to invalidate: by default a write
invalidates every article or every comment list; a write path that only touches some articles'
rows says which (`concerns`), and only theirs are invalidated (a comment then leaves the other
articles' comments cached). Writes to users (names, bios, images) always invalidate everything.

Backends: Redis (INKWELL_REDIS_URL) shared by every process and pod; in-process otherwise, which is
only coherent in a single process, so it is used only in development and test with one worker.
With Redis unreachable, reads skip the cache and writes answer 503: a write that could not be
invalidated could be hidden by a stale read. Cached entries also expire (cache_ttl_seconds), which
bounds what a Redis failure between a commit and its second invalidation could leave behind.
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

# What the lookup metrics call the two families of cached reads.
ARTICLES = "articles"
COMMENTS = "comments"

# Scopes: every cached response is stored under the generations of the scopes it is built from.
LISTS = "lists"  # article lists and tags
EVERY_ARTICLE = "article"  # a single article; "article:<slug>" is that one only
EVERY_COMMENTS = "comments"  # an article's comments; "comments:<slug>" are that article's only

# What each table's rows appear in. Comments are listed by article slug (a missing article is a
# 404) and show their author; follows never change a public response (`following` is false for
# anonymous readers).
TABLE_SCOPES: dict[str, frozenset[str]] = {
    "articles": frozenset({LISTS, EVERY_ARTICLE, EVERY_COMMENTS}),
    "article_tags": frozenset({LISTS, EVERY_ARTICLE}),
    "tags": frozenset({LISTS, EVERY_ARTICLE}),
    "favorites": frozenset({LISTS, EVERY_ARTICLE}),
    "comments": frozenset({EVERY_COMMENTS}),
    "users": frozenset({LISTS, EVERY_ARTICLE, EVERY_COMMENTS}),
}
# Rows of these tables belong to one article, so a write that `concerns` some articles only
# invalidates theirs; a user's name, bio and image show on every article and comment they wrote.
_PER_ARTICLE = frozenset({"articles", "article_tags", "tags", "favorites", "comments"})
_TABLES_KEY = "inkwell_cache_tables"
_SLUGS_KEY = "inkwell_cache_slugs"


def scopes_of(template: str, slug: str | None) -> tuple[str, tuple[str, ...]]:
    """(metric label, scopes) of a cached route's response."""
    if template == "/api/articles/{slug}":
        return ARTICLES, (EVERY_ARTICLE, f"{EVERY_ARTICLE}:{slug}")
    if template == "/api/articles/{slug}/comments":
        return COMMENTS, (EVERY_COMMENTS, f"{EVERY_COMMENTS}:{slug}")
    return ARTICLES, (LISTS,)


class CacheUnavailable(Exception):
    """The cache's store cannot be reached."""


@dataclass(frozen=True)
class Slot:
    """Where a value read under its scopes' generations is stored, should it have to be built."""

    key: str
    generations: str


class Backend(Protocol):
    async def get(self, scopes: Sequence[str], key: str) -> tuple[Slot, bytes | None]: ...
    async def put(self, slot: Slot, value: bytes) -> None: ...
    async def invalidate(self, scopes: Iterable[str]) -> None: ...
    async def close(self) -> None: ...


# Generations are numbers from one clock that only goes forward, so a scope never gets a number it
# had before, even after it expired (a scope not invalidated for a while is forgotten: with no
# generation it reads as 0, and values stored under 0 before its first generation have expired by
# then, because generations outlive values).
def _generation_ttl(value_ttl: float) -> int:
    return max(int(value_ttl), 1) * 2 + 60


class LocalBackend:
    """Generations and values in this process, least recently used values evicted first."""

    def __init__(self, *, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = 0
        self.generations: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self.values: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()

    def _generation(self, scope: str, now: float) -> int:
        found = self.generations.get(scope)
        return found[1] if found is not None and found[0] > now else 0

    async def get(self, scopes: Sequence[str], key: str) -> tuple[Slot, bytes | None]:
        now = time.monotonic()
        slot = Slot(key, ".".join(str(self._generation(scope, now)) for scope in scopes))
        found = self.values.get((slot.generations, key))
        if found is None or found[0] < now:
            return slot, None
        self.values.move_to_end((slot.generations, key))
        return slot, found[1]

    async def put(self, slot: Slot, value: bytes) -> None:
        self.values[(slot.generations, slot.key)] = (time.monotonic() + self.ttl, value)
        while len(self.values) > self.max_entries:
            self.values.popitem(last=False)

    async def invalidate(self, scopes: Iterable[str]) -> None:
        now = time.monotonic()
        self.clock += 1
        for scope in scopes:
            self.generations.pop(scope, None)
            self.generations[scope] = (now + _generation_ttl(self.ttl), self.clock)
        # Oldest first: drop the generations that have expired.
        while self.generations and next(iter(self.generations.values()))[0] <= now:
            self.generations.popitem(last=False)

    async def close(self) -> None:
        self.values.clear()


# One round trip per read: the scopes' generations and the value stored under them.
_GET = """
local generations = {}
for i, key in ipairs(KEYS) do generations[i] = redis.call('GET', key) or '0' end
local stamp = table.concat(generations, '.')
return {stamp, redis.call('GET', ARGV[2] .. stamp .. ':' .. ARGV[1])}
"""
# Every scope's new generation in one command, from the clock (KEYS[1]).
_INVALIDATE = """
local generation = redis.call('INCR', KEYS[1])
for i = 2, #KEYS do redis.call('SET', KEYS[i], generation, 'EX', ARGV[1]) end
"""
_PREFIX = "inkwell:"


class RedisBackend:
    def __init__(self, url: str, *, ttl: float, timeout: float = 0.5) -> None:
        from redis.asyncio import Redis

        self.ttl = max(int(ttl), 1)
        self.redis = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self.lookup = self.redis.register_script(_GET)
        self.renew = self.redis.register_script(_INVALIDATE)

    async def get(self, scopes: Sequence[str], key: str) -> tuple[Slot, bytes | None]:
        from redis.exceptions import RedisError

        try:
            generations, value = await self.lookup(
                keys=[f"{_PREFIX}gen:{scope}" for scope in scopes], args=[key, f"{_PREFIX}value:"]
            )
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(str(exc)) from exc
        return Slot(key, generations.decode()), value

    async def put(self, slot: Slot, value: bytes) -> None:
        from redis.exceptions import RedisError

        try:
            await self.redis.set(f"{_PREFIX}value:{slot.generations}:{slot.key}", value, ex=self.ttl)
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(str(exc)) from exc

    async def invalidate(self, scopes: Iterable[str]) -> None:
        from redis.exceptions import RedisError

        keys = [f"{_PREFIX}clock", *(f"{_PREFIX}gen:{scope}" for scope in scopes)]
        try:
            await self.renew(keys=keys, args=[_generation_ttl(self.ttl)])
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


# The public reads that are cached, by route template.
CACHED_ROUTES = frozenset(
    {"/api/articles", "/api/articles/{slug}", "/api/articles/{slug}/comments", "/api/tags"}
)
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
        label, scopes = scopes_of(template, match["slug"])
        key = f"{scope['path']}?{scope['query_string'].decode('latin-1')}"
        try:
            slot, value = await backend.get(scopes, key)
        except CacheUnavailable:
            CACHE_ERRORS.labels("get").inc()
            await self.app(scope, receive, send)
            return
        if value is not None:
            CACHE_LOOKUPS.labels(label, "hit").inc()
            scope["route"] = self._route(template)
            headers = [
                (b"content-length", str(len(value)).encode()),
                (b"content-type", JSON_MEDIA_TYPE.encode()),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": value})
            return
        CACHE_LOOKUPS.labels(label, "miss").inc()
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


def concerns(session: Any, *slugs: str) -> None:
    """Declares that the session's writes to articles and what belongs to them (tags, favourites,
    comments) touch only the articles with these slugs (all of them: an article's old and new slug
    when it is renamed), so only their cached responses, and the lists, are invalidated."""
    session.info.setdefault(_SLUGS_KEY, set()).update(slugs)


def written_scopes(session: Any) -> frozenset[str]:
    """The scopes the session's transaction wrote to, forgotten once read."""
    tables: set[str] = session.info.pop(_TABLES_KEY, set())
    slugs: set[str] = session.info.pop(_SLUGS_KEY, set())
    scopes: set[str] = set()
    for table in tables:
        for scope in TABLE_SCOPES.get(table, ()):
            if slugs and table in _PER_ARTICLE and scope != LISTS:
                scopes.update(f"{scope}:{slug}" for slug in slugs)
            else:
                scopes.add(scope)
    return frozenset(scopes)


def _note(session: Session, table: str) -> None:
    session.info.setdefault(_TABLES_KEY, set()).add(table)


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
    session.info.pop(_TABLES_KEY, None)
    session.info.pop(_SLUGS_KEY, None)
