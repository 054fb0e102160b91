"""Password hashing (Argon2id) and JWTs (HS256 by default): the only code that touches secrets.

A hash holds `argon2_memory_cost_kib` (64 MiB at the production cost) while it runs, on a thread of
anyio's pool (40 threads): unbounded, 16 concurrent registrations took one process from 130 to
1,131 MiB, twice the pod's limit. So at most `argon2_max_concurrent` run at once per process (the
chart sizes it from the pod's memory limit); a hash that finds no slot waits up to
`argon2_wait_seconds`, then is refused with 503 and Retry-After: a login wave is slowed, then shed,
never an out-of-memory kill that takes every request of the pod with it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import anyio
import anyio.to_thread
import jwt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from service.config import Settings
from service.errors import ServiceUnavailable
from service.observability.metrics import PASSWORD_HASH_REFUSALS, PASSWORD_HASH_WAITS

# Verified against when the user does not exist, so a login takes as long either way.
_DUMMY_PASSWORD = "inkwell-timing-equaliser"  # noqa: S105 - not a credential


@lru_cache(maxsize=8)
def _hasher(time_cost: int, memory_cost: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID)


def hasher(settings: Settings) -> PasswordHasher:
    return _hasher(settings.argon2_time_cost, settings.argon2_memory_cost_kib, settings.argon2_parallelism)


@lru_cache(maxsize=8)
def _dummy_hash(ph: PasswordHasher) -> str:
    return ph.hash(_DUMMY_PASSWORD)


class HashingBusy(Exception):
    """Every hashing slot stayed taken for as long as a hash may wait: the cause of its 503."""


# Per process, whatever the number of apps in it: the memory the bound protects is the process's.
_slots: dict[int, anyio.Semaphore] = {}


@contextlib.asynccontextmanager
async def _hashing_slot(settings: Settings) -> AsyncIterator[None]:
    limit = settings.argon2_max_concurrent
    slots = _slots.get(limit)
    if slots is None:
        slots = _slots[limit] = anyio.Semaphore(limit)
    try:
        slots.acquire_nowait()
    except anyio.WouldBlock:
        PASSWORD_HASH_WAITS.inc()
        acquired = False
        with anyio.move_on_after(settings.argon2_wait_seconds):
            await slots.acquire()
            acquired = True
        if not acquired:
            PASSWORD_HASH_REFUSALS.inc()
            busy = HashingBusy(f"all {limit} hashing slots stayed taken for {settings.argon2_wait_seconds} s")
            raise ServiceUnavailable("server", "is busy, retry shortly") from busy
    try:
        yield
    finally:
        slots.release()


async def hash_password(settings: Settings, password: str) -> str:
    # Argon2 is deliberately slow; keep it off the event loop.
    async with _hashing_slot(settings):
        return await anyio.to_thread.run_sync(hasher(settings).hash, password)


async def verify_password(settings: Settings, password_hash: str | None, password: str) -> bool:
    ph = hasher(settings)

    def _verify() -> bool:
        try:
            return ph.verify(password_hash or _dummy_hash(ph), password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    async with _hashing_slot(settings):
        return await anyio.to_thread.run_sync(_verify)


def create_token(settings: Settings, user_id: int, *, now: datetime | None = None) -> str:
    issued = now or datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(seconds=settings.jwt_ttl_seconds)).timestamp()),
    }
    return jwt.encode(claims, settings.secret_key, algorithm=settings.jwt_algorithm)


class InvalidToken(Exception):
    pass


def decode_token(settings: Settings, token: str) -> int:
    """Return the user id in a valid token; anything else raises InvalidToken."""
    user_id, expires = _verified(settings.secret_key, settings.jwt_algorithm, token)
    # A token verified before is not checked again (about a tenth of a signed-in request's CPU),
    # but its expiry is, on every use, as PyJWT would: expired once `exp` is not in the future.
    if expires <= int(time.time()):
        raise InvalidToken("Signature has expired")
    return user_id


@lru_cache(maxsize=4096)
def _verified(secret_key: str, algorithm: str, token: str) -> tuple[int, int]:
    """(user id, expiry) of a token whose signature and claims are valid; only these are cached."""
    try:
        # Exactly one algorithm is accepted: "none" and algorithm confusion are rejected by PyJWT.
        claims = jwt.decode(
            token, secret_key, algorithms=[algorithm], options={"require": ["sub", "exp", "iat"]}
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    try:
        user_id = int(claims["sub"])
    except (TypeError, ValueError) as exc:
        raise InvalidToken("sub is not a user id") from exc
    if not 0 < user_id < 2**31:
        raise InvalidToken("sub is not a user id")
    return user_id, int(claims["exp"])
