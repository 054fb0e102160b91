"""Rate limits: how many requests a client may make per window, counted where every process and pod
sees the same count, and an account's failed logins making the next attempt wait longer and longer.

Policies (settings `rate_limit_*`, docs/ratelimits.md), one per request, chosen by method and path:

- `login`: POST /api/users/login and POST /api/token, per client IP;
- `registration`: POST /api/users, per client IP;
- `writes`: every other method but GET, HEAD and OPTIONS, per signed-in user (the token's subject,
  from the cached decode: no database read), per client IP when anonymous or the token is invalid;
- `reads`: GET, HEAD and OPTIONS, per client IP;
- `login_account`: on the login endpoints (`LoginAttempts`), per login identifier: past the free
  consecutive failures, each failure locks the account's logins for twice as long as the last;
  a successful login resets it.

/healthz, /readyz and /metrics are never limited: probes and scrapes come from the kubelet and
Prometheus, and a refused probe would take a pod out of service.

The client IP is the one the access log names: the peer, or with a trusted proxy in front
(INKWELL_TRUSTED_PROXIES) the right-most address its X-Forwarded-For adds that is not a proxy's.

Counting. Windows are fixed and aligned to the clock (a minute's window starts on the minute), so one
atomic increment in the store answers the request and gives what its `RateLimit` header says (the
quota left and the seconds to the window's end) without a second round trip; a client can spend two
windows' quota across a boundary, which these policies (against abuse, not for billing) accept. The
store is the `limits` library's: its async Redis storage (redis-py, INKWELL_REDIS_URL), or its
in-process memory storage in development and test, where there is one process
(`service.config` refuses limits without Redis elsewhere). `limits`' own strategies are not used:
its fixed window starts at a key's first hit, so the reset time would cost another round trip, and
slowapi (on top of `limits`) limits inside decorated endpoints, with its own 429 and headers, where
this pipeline wants one pure ASGI layer that answers before routing.

When the store fails (Redis down or timing out), the login policies fail closed: 503 with a reason,
since letting guesses through unlimited is what they exist to prevent; the others fail open (a limit
unenforced for a while costs less than an API down with its cache). Both recover on their own:
every request tries the store again.

A refusal is 429 `{"errors": {"rate": ["limit exceeded, retry in N s"]}}` with `Retry-After` and the
`RateLimit-Policy` and `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers (structured
fields: `"reads";q=12000;w=60` and `"reads";r=0;t=17`); allowed responses of a limited route carry
the same two fields, which cost nothing more to write.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Depends, Request
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.errors import StorageError
from redis.asyncio import ConnectionPool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.auth.security import InvalidToken, decode_token
from service.config import Settings
from service.dependencies import token_of
from service.errors import ConduitError, ServiceUnavailable, Unauthorized
from service.observability.logging import TrustedProxies
from service.observability.metrics import RATE_LIMIT_CHECKS
from service.responses import error_response

logger = structlog.get_logger("inkwell.ratelimit")

LOGIN = "login"
LOGIN_ACCOUNT = "login_account"
REGISTRATION = "registration"
WRITES = "writes"
READS = "reads"

LOGIN_PATHS = frozenset({"/api/users/login", "/api/token"})
REGISTRATION_PATH = "/api/users"
NEVER_LIMITED = frozenset({"/healthz", "/readyz", "/metrics"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Long enough for a Redis that answers at all, even on a busy event loop; short enough that a hung
# one holds a request about a second before it is let through (or refused, for logins).
STORE_TIMEOUT_SECONDS = 1.0
KEY_PREFIX = "inkwell:limits"  # beside the cache's inkwell: keys, in the same Redis

ERROR_KEY = "rate"


def unavailable() -> ServiceUnavailable:
    """The login policies' answer while their store cannot be reached."""
    return ServiceUnavailable("rate_limits", "cannot be checked, so logins wait until they can; retry later")


class LimitsUnavailable(Exception):
    """The limits' store cannot be reached."""


class RateLimited(ConduitError):
    status_code = 429

    def __init__(self, message: str, *, retry_after: int, headers: Iterable[tuple[str, str]]) -> None:
        super().__init__({ERROR_KEY: [message]}, headers={"Retry-After": str(retry_after), **dict(headers)})


@dataclass(frozen=True)
class Policy:
    """A named quota per window, and what happens when its store cannot be reached."""

    name: str
    rate: RateLimitItem
    fail_closed: bool = False

    @property
    def window(self) -> int:
        return self.rate.get_expiry()

    @property
    def header(self) -> str:
        """Its RateLimit-Policy member: the quota (q) per window (w, seconds)."""
        return f'"{self.name}";q={self.rate.amount};w={self.window}'


@dataclass(frozen=True)
class Verdict:
    policy: Policy
    allowed: bool
    remaining: int
    reset: int  # seconds until the window ends and its quota is whole again

    def headers(self) -> list[tuple[str, str]]:
        return [
            ("RateLimit-Policy", self.policy.header),
            ("RateLimit", f'"{self.policy.name}";r={self.remaining};t={self.reset}'),
        ]


class Limiter:
    """The policies the settings turn on, counted in one store."""

    def __init__(self, storage: Storage, settings: Settings, *, pool: ConnectionPool | None = None) -> None:
        self.storage = storage
        self.pool = pool  # Redis's connections, closed with the app
        rates = {
            LOGIN: settings.rate_limit_login,
            REGISTRATION: settings.rate_limit_registration,
            WRITES: settings.rate_limit_writes,
            READS: settings.rate_limit_reads,
        }
        self.policies = {
            name: Policy(name, parse(rate), fail_closed=name == LOGIN) for name, rate in rates.items() if rate
        }
        self.free_failures = settings.rate_limit_login_free_failures
        self.backoff = settings.rate_limit_login_backoff_seconds
        self.backoff_max = settings.rate_limit_login_backoff_max_seconds
        # Which window a request falls in; replaceable, so a test can stay inside one.
        self.clock: Callable[[], float] = time.time

    async def hit(self, policy: Policy, identity: str) -> Verdict:
        """Counts one request of `identity` against `policy` in the current window."""
        now = self.clock()
        window = policy.window
        number = int(now // window)
        reset = max(math.ceil((number + 1) * window - now), 1)
        key = policy.rate.key_for(policy.name, identity, str(number))
        try:
            # The key outlives its window by a second, so no request in it finds it gone.
            count = await self.storage.incr(key, reset + 1)
        except (StorageError, OSError) as exc:
            raise LimitsUnavailable(str(exc)) from exc
        amount = policy.rate.amount
        return Verdict(policy, count <= amount, max(amount - count, 0), reset)

    # An account's consecutive failed logins, and the lock the last of them set.
    def _account_keys(self, account: str) -> tuple[str, str]:
        # Hashed: the store holds no email address or username.
        digest = hashlib.sha256(account.strip().casefold().encode()).hexdigest()[:32]
        return f"{LOGIN_ACCOUNT}/failures/{digest}", f"{LOGIN_ACCOUNT}/lock/{digest}"

    async def locked_for(self, account: str) -> int:
        """Seconds until `account` may try to log in again; 0 when it may now."""
        _, lock = self._account_keys(account)
        try:
            until = await self.storage.get_expiry(lock)
        except (StorageError, OSError) as exc:
            raise LimitsUnavailable(str(exc)) from exc
        left = until - time.time()
        return math.ceil(left) if left > 0 else 0

    async def failed(self, account: str) -> int:
        """Records a failed login; the seconds the account now waits (0 while failures are free)."""
        failures_key, lock = self._account_keys(account)
        try:
            # Failures are forgotten once the account has gone a longest wait and more without one.
            failures = await self.storage.incr(failures_key, math.ceil(self.backoff_max * 2))
            if failures <= self.free_failures:
                return 0
            doublings = min(failures - self.free_failures - 1, 30)
            wait = math.ceil(min(self.backoff * 2.0**doublings, self.backoff_max))
            # A new lock: the previous one has expired, or the attempt would have been refused.
            await self.storage.clear(lock)
            await self.storage.incr(lock, wait)
        except (StorageError, OSError) as exc:
            raise LimitsUnavailable(str(exc)) from exc
        return wait

    async def succeeded(self, account: str) -> None:
        failures_key, lock = self._account_keys(account)
        try:
            await self.storage.clear(failures_key)
            await self.storage.clear(lock)
        except (StorageError, OSError) as exc:
            raise LimitsUnavailable(str(exc)) from exc

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.disconnect()


def create_limiter(settings: Settings) -> Limiter | None:
    """The limiter the settings ask for: in Redis when a URL is set, else in this process (development
    and test only: `service.config` refuses limits without Redis elsewhere); None when off."""
    if not settings.rate_limits_enabled:
        return None
    if not settings.redis_url:
        return Limiter(MemoryStorage(), settings)
    pool = ConnectionPool.from_url(
        settings.redis_url, socket_timeout=STORE_TIMEOUT_SECONDS, socket_connect_timeout=STORE_TIMEOUT_SECONDS
    )
    storage = RedisStorage(
        f"async+{settings.redis_url}",
        implementation="redispy",
        wrap_exceptions=True,
        key_prefix=KEY_PREFIX,
        connection_pool=pool,  # type: ignore[arg-type]  # passed on to redis-py's client
    )
    return Limiter(storage, settings, pool=pool)


def count(policy: str, result: str) -> None:
    RATE_LIMIT_CHECKS.labels(policy, result).inc()


class _Warnings:
    """One warning per outage of the store, not one per request while it lasts."""

    def __init__(self) -> None:
        self.down = False

    def store_failed(self, exc: Exception, policy: Policy) -> None:
        if not self.down:
            self.down = True
            logger.warning(
                "rate limits unavailable: logins refused, other requests let through uncounted",
                error=str(exc),
                policy=policy.name,
            )

    def store_answered(self) -> None:
        if self.down:
            self.down = False
            logger.info("rate limits available again")


class RateLimits:
    """The pipeline's rate limit layer: each request counted against its policy, refused with 429
    once the policy's quota for its client is spent, before routing and the cache."""

    def __init__(self, app: ASGIApp, *, limiter: Limiter, settings: Settings) -> None:
        self.app = app
        self.limiter = limiter
        self.settings = settings
        # Parsed once, as the access log does, so both name the same client.
        self.proxies = TrustedProxies(settings.trusted_proxies)
        self.warnings = _Warnings()

    def _client(self, scope: Scope) -> str:
        peer = scope.get("client")
        forwarded = [value for name, value in scope["headers"] if name == b"x-forwarded-for"]
        return self.proxies.client(peer[0] if peer else None, forwarded) or "unknown"

    def _user(self, scope: Scope) -> int | None:
        header = next((value for name, value in scope["headers"] if name == b"authorization"), None)
        if header is None:
            return None
        try:
            token = token_of(header.decode("latin-1"))
            return None if token is None else decode_token(self.settings, token)
        except (Unauthorized, InvalidToken):
            return None  # refused by the route with 401; counted against the client's IP until then

    def classify(self, scope: Scope) -> tuple[Policy, str] | None:
        """The policy a request counts against and who it counts for; None for no policy."""
        path: str = scope["path"]
        if path in NEVER_LIMITED:
            return None
        method: str = scope["method"]
        if method in READ_METHODS:
            name = READS
        elif path in LOGIN_PATHS and method == "POST":
            name = LOGIN
        elif path == REGISTRATION_PATH and method == "POST":
            name = REGISTRATION
        else:
            name = WRITES
        policy = self.limiter.policies.get(name)
        if policy is None:
            return None
        if name == WRITES and (user := self._user(scope)) is not None:
            return policy, f"user:{user}"
        return policy, f"ip:{self._client(scope)}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (found := self.classify(scope)) is None:
            await self.app(scope, receive, send)
            return
        policy, identity = found
        try:
            verdict = await self.limiter.hit(policy, identity)
        except LimitsUnavailable as exc:
            count(policy.name, "unavailable")
            self.warnings.store_failed(exc, policy)
            if policy.fail_closed:
                # Every 503 says why in the log; the requests let through below only once an outage.
                logger.warning("login refused: rate limits unavailable", policy=policy.name, error=str(exc))
                refused = unavailable()
                await error_response(503, refused.errors, refused.headers)(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        self.warnings.store_answered()
        if not verdict.allowed:
            count(policy.name, "limited")
            refusal = RateLimited(
                f"limit exceeded, retry in {verdict.reset} s",
                retry_after=verdict.reset,
                headers=verdict.headers(),
            )
            await error_response(refusal.status_code, refusal.errors, refusal.headers)(scope, receive, send)
            return
        count(policy.name, "allowed")
        extra = [(name.lower().encode(), value.encode()) for name, value in verdict.headers()]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


class LoginAttempts:
    """The `login_account` policy around one login: refused with 429 while the account is locked
    (its last failures past the free ones), the failure recorded on a 401 (which may lock it), the
    count reset on success. Its store down, the attempt is refused with 503 (fail closed)."""

    def __init__(self, limiter: Limiter | None) -> None:
        self.limiter = limiter

    @asynccontextmanager
    async def attempt(self, account: str) -> AsyncIterator[None]:
        limiter = self.limiter
        if limiter is None:
            yield
            return
        policy = f'"{LOGIN_ACCOUNT}";q={limiter.free_failures}'
        try:
            wait = await limiter.locked_for(account)
        except LimitsUnavailable as exc:
            count(LOGIN_ACCOUNT, "unavailable")
            logger.warning("login limits unavailable", error=str(exc))
            raise unavailable() from exc
        if wait:
            count(LOGIN_ACCOUNT, "limited")
            raise RateLimited(
                f"too many failed logins for this account, retry in {wait} s",
                retry_after=wait,
                headers=[("RateLimit-Policy", policy), ("RateLimit", f'"{LOGIN_ACCOUNT}";r=0;t={wait}')],
            )
        count(LOGIN_ACCOUNT, "allowed")
        try:
            yield
        except ConduitError as error:
            if error.status_code == 401:
                try:
                    await limiter.failed(account)
                except LimitsUnavailable as exc:
                    # Unrecorded, a failure would not count towards the lock: not answered either.
                    logger.warning("login limits unavailable", error=str(exc))
                    raise unavailable() from exc
            raise
        try:
            await limiter.succeeded(account)
        except LimitsUnavailable as exc:
            # The password was right: the login stands, and its earlier failures expire on their own.
            logger.warning("login failures not reset", error=str(exc))


async def login_attempts(request: Request) -> LoginAttempts:
    return LoginAttempts(request.app.state.limiter)


LoginAttemptsDep = Annotated[LoginAttempts, Depends(login_attempts)]
