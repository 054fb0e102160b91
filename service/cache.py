"""Public reads (article lists, articles, comments, tags) served from a cache of their JSON, which
every commit that changed the rows they are built from invalidates before the writer is answered.

Invalidation is by generation. Each cached response is stored under the current generations of
the scopes it is built from: the lists (article lists and tags), or every article and this one
(`article:<slug>`), or every article's comments and this article's (`comments:<slug>`). A commit
that wrote one of a scope's tables gives the scope a new generation, once before the commit (so a
write never commits while the cache cannot be invalidated) and once after (so a read that raced
the commit, and cached what it saw before it, is never served again): `InvalidateOnCommit`, a hook
of the unit of work (`service.db`), which records what each write touched as the repositories
write it, so no write path can forget to invalidate. A write to some articles' rows (a comment, a
favourite, an edit) invalidates only theirs, and the lists; a write that may touch any row
invalidates every article or every comment list, and writes to users (names, bios, images) always
invalidate everything. Which routes are cached is declared on the routes (`cached`).

With a read replica (`service.replica`), a scope's generation also carries the LSN of the commit
that last invalidated it (the largest seen, kept through the invalidation before the next commit,
which does not know its own yet). A read that misses is built on the replica only once the replica
has replayed the LSN of every scope it will be stored under: else what a lagging replica returned
after a write could be cached under the generation that write gave, and served until it expires.

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import structlog
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.config import Settings
from service.db import Changes, UnitOfWork
from service.deadlines import responsive_timeout
from service.errors import ServiceUnavailable
from service.observability.metrics import CACHE_ERRORS, CACHE_LOOKUPS
from service.replica import READ_AFTER
from service.responses import JSON_MEDIA_TYPE

logger = structlog.get_logger("inkwell.cache")

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
# Rows of these tables belong to one article, so a write that names its articles only invalidates
# theirs; a user's name, bio and image show on every article and comment they wrote.
_PER_ARTICLE = frozenset({"articles", "article_tags", "tags", "favorites", "comments"})


def written_scopes(changes: Changes) -> frozenset[str]:
    """The scopes whose cached responses a unit of work's writes may have changed."""
    scopes: set[str] = set()
    for table, articles in changes.items():
        for scope in TABLE_SCOPES.get(table, ()):
            if articles is not None and table in _PER_ARTICLE and scope != LISTS:
                scopes.update(f"{scope}:{slug}" for slug in articles)
            else:
                scopes.add(scope)
    return frozenset(scopes)


@dataclass(frozen=True)
class PublicRead:
    """A cached public read: what its lookup metrics call it, and the scopes its response is built
    from (with `per_article`, also the scope of the article the path's slug names)."""

    family: str
    scope: str
    per_article: bool = False

    def scopes(self, path_params: Mapping[str, str]) -> tuple[str, ...]:
        if self.per_article:
            return self.scope, f"{self.scope}:{path_params['slug']}"
        return (self.scope,)


ARTICLE_LISTS = PublicRead(ARTICLES, LISTS)  # article lists and tags
ONE_ARTICLE = PublicRead(ARTICLES, EVERY_ARTICLE, per_article=True)
ARTICLE_COMMENTS = PublicRead(COMMENTS, EVERY_COMMENTS, per_article=True)

_MARK = "__inkwell_public_read__"
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def cached(read: PublicRead) -> Callable[[Endpoint], Endpoint]:
    """Declares a GET endpoint's anonymous responses shareable, cached under `read`'s scopes."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _MARK, read)
        return endpoint

    return mark


class CacheUnavailable(Exception):
    """The cache's store cannot be reached."""


@dataclass(frozen=True)
class Slot:
    """Where a value read under its scopes' generations is stored, should it have to be built."""

    key: str
    generations: str

    @property
    def after(self) -> int:
        """The LSN a value stored here must have been read at or after: the latest commit that
        invalidated one of its scopes (0 when none recorded one)."""
        return max(int(generation.partition(":")[2] or 0) for generation in self.generations.split("."))


class Backend(Protocol):
    async def get(self, scopes: Sequence[str], key: str) -> tuple[Slot, bytes | None]: ...
    async def put(self, slot: Slot, value: bytes) -> None: ...
    async def invalidate(self, scopes: Iterable[str], lsn: int = 0) -> None: ...
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
        self.generations: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self.values: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()

    def _generation(self, scope: str, now: float) -> str:
        found = self.generations.get(scope)
        return found[1] if found is not None and found[0] > now else "0"

    async def get(self, scopes: Sequence[str], key: str) -> tuple[Slot, bytes | None]:
        now = time.monotonic()
        slot = Slot(key, ".".join(self._generation(scope, now) for scope in scopes))
        found = self.values.get((slot.generations, key))
        if found is None or found[0] < now:
            return slot, None
        self.values.move_to_end((slot.generations, key))
        return slot, found[1]

    async def put(self, slot: Slot, value: bytes) -> None:
        self.values[(slot.generations, slot.key)] = (time.monotonic() + self.ttl, value)
        while len(self.values) > self.max_entries:
            self.values.popitem(last=False)

    async def invalidate(self, scopes: Iterable[str], lsn: int = 0) -> None:
        now = time.monotonic()
        self.clock += 1
        for scope in scopes:
            before = Slot("", self._generation(scope, now)).after
            self.generations.pop(scope, None)
            self.generations[scope] = (now + _generation_ttl(self.ttl), f"{self.clock}:{max(lsn, before)}")
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
# Every scope's new generation in one command, from the clock (KEYS[1]), each with the larger of
# the LSN given (ARGV[2]) and the one it had. LSNs are compared as Lua numbers (doubles, exact to
# 2^53 bytes of WAL) and kept as the strings they came as.
_INVALIDATE = """
local generation = redis.call('INCR', KEYS[1])
for i = 2, #KEYS do
  local lsn = ARGV[2]
  local before = string.match(redis.call('GET', KEYS[i]) or '', ':(%d+)$')
  if before and tonumber(before) > tonumber(lsn) then lsn = before end
  redis.call('SET', KEYS[i], generation .. ':' .. lsn, 'EX', ARGV[1])
end
"""
_PREFIX = "inkwell:"


class RedisBackend:
    def __init__(self, url: str, *, ttl: float, timeout: float = 0.5) -> None:
        from redis.asyncio import Redis

        self.ttl = max(int(ttl), 1)
        # Each operation (connecting included) is bounded by `timeout` of the loop's attention, not
        # by redis-py's wall-clock socket timeouts: on a saturated loop those expired on replies
        # that had arrived in time, and writes answered 503 (service.deadlines).
        self.timeout = timeout
        self.redis = Redis.from_url(url, socket_timeout=None, socket_connect_timeout=None)
        self.lookup = self.redis.register_script(_GET)
        self.renew = self.redis.register_script(_INVALIDATE)

    async def get(self, scopes: Sequence[str], key: str) -> tuple[Slot, bytes | None]:
        from redis.exceptions import RedisError

        try:
            async with responsive_timeout(self.timeout):
                generations, value = await self.lookup(
                    keys=[f"{_PREFIX}gen:{scope}" for scope in scopes], args=[key, f"{_PREFIX}value:"]
                )
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(str(exc)) from exc
        return Slot(key, generations.decode()), value

    async def put(self, slot: Slot, value: bytes) -> None:
        from redis.exceptions import RedisError

        try:
            async with responsive_timeout(self.timeout):
                await self.redis.set(f"{_PREFIX}value:{slot.generations}:{slot.key}", value, ex=self.ttl)
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(str(exc)) from exc

    async def invalidate(self, scopes: Iterable[str], lsn: int = 0) -> None:
        from redis.exceptions import RedisError

        keys = [f"{_PREFIX}clock", *(f"{_PREFIX}gen:{scope}" for scope in scopes)]
        try:
            async with responsive_timeout(self.timeout):
                await self.renew(keys=keys, args=[_generation_ttl(self.ttl), lsn])
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(str(exc)) from exc

    async def close(self) -> None:
        await self.redis.aclose()


class ResponseCache:
    def __init__(self, backend: Backend | None) -> None:
        self.backend = backend

    async def invalidate(self, scopes: Iterable[str], lsn: int = 0) -> None:
        if self.backend is not None:
            try:
                await self.backend.invalidate(scopes, lsn)
            except CacheUnavailable:
                CACHE_ERRORS.labels("invalidate").inc()
                raise

    async def close(self) -> None:
        if self.backend is not None:
            await self.backend.close()


class PublicReadCache:
    """Answers anonymous GETs of the routes declared `cached` from the cache, before routing,
    dependencies and the endpoint; on a miss, the app answers and a 200 from that route is stored.

    Inside the response observer, so a hit is counted, traced and logged like any request, under
    the route it would have matched (set here as `scope["route"]`).
    """

    def __init__(self, app: ASGIApp, *, cache: ResponseCache, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.cache = cache
        self.routes = routes
        self._table: list[tuple[re.Pattern[str], BaseRoute, PublicRead]] | None = None

    def _cached_routes(self) -> list[tuple[re.Pattern[str], BaseRoute, PublicRead]]:
        # Built on first use, once every route is there; a path regex each (FastAPI's own, of the
        # full template), which costs a cached read nothing it can measure.
        if self._table is None:
            self._table = [
                (context.path_regex, context.original_route, read)
                for context in iter_route_contexts(self.routes)
                if (read := getattr(context.endpoint, _MARK, None)) is not None
                and "GET" in (context.methods or ())
            ]
        return self._table

    def _match(self, path: str) -> tuple[BaseRoute, PublicRead, dict[str, str]] | None:
        for pattern, route, read in self._cached_routes():
            if match := pattern.match(path):
                return route, read, match.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        backend = self.cache.backend
        # Signed-in responses say what the reader follows and favours: never shared.
        if (
            backend is None
            or scope["type"] != "http"
            or scope["method"] != "GET"
            or any(name == b"authorization" for name, _ in scope["headers"])
        ):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        found = self._match(path)
        if found is None:
            await self.app(scope, receive, send)
            return
        route, read, path_params = found
        key = f"{path}?{scope['query_string'].decode('latin-1')}"
        try:
            slot, value = await backend.get(read.scopes(path_params), key)
        except CacheUnavailable:
            CACHE_ERRORS.labels("get").inc()
            await self.app(scope, receive, send)
            return
        if value is not None:
            CACHE_LOOKUPS.labels(read.family, "hit").inc()
            scope["route"] = route
            headers = [
                (b"content-length", str(len(value)).encode()),
                (b"content-type", JSON_MEDIA_TYPE.encode()),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": value})
            return
        CACHE_LOOKUPS.labels(read.family, "miss").inc()
        if after := slot.after:
            scope[READ_AFTER] = after  # built where it has replayed the scopes' last write
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
        # Only what the declared route answered in full ("feed" matches `{slug}`, but is its own route).
        if status == 200 and scope.get("route") is route:
            try:
                await backend.put(slot, b"".join(chunks))
            except CacheUnavailable:
                CACHE_ERRORS.labels("put").inc()


class InvalidateOnCommit:
    """The cache's hook on every commit: new generations for the scopes the write touched, before the
    commit (a write never commits while the cache cannot be invalidated: 503) and after it (so a read
    that raced the commit, and cached what it saw before it, is never served again)."""

    def __init__(self, cache: ResponseCache) -> None:
        self.cache = cache

    async def before_commit(self, uow: UnitOfWork) -> None:
        if scopes := written_scopes(uow.changes):
            try:
                await self.cache.invalidate(scopes)
            except CacheUnavailable as exc:
                raise ServiceUnavailable(
                    "cache", "is unavailable, so writes wait until it is back; retry later"
                ) from exc

    async def after_commit(self, uow: UnitOfWork) -> None:
        if scopes := written_scopes(uow.changes):
            try:
                await self.cache.invalidate(scopes, uow.commit_lsn)
            except CacheUnavailable:
                logger.warning("cache invalidation after commit failed", scopes=sorted(scopes))


def create_cache(settings: Settings) -> ResponseCache:
    if not settings.cache_enabled:
        return ResponseCache(None)
    if settings.redis_url:
        return ResponseCache(RedisBackend(settings.redis_url, ttl=settings.cache_ttl_seconds))
    if settings.environment.is_local:
        return ResponseCache(LocalBackend(ttl=settings.cache_ttl_seconds))
    # Several pods each with its own in-process cache would serve each other's stale reads.
    return ResponseCache(None)
