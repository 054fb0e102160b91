"""Password hashing (Argon2id) and JWTs (HS256 by default): the only code that touches secrets."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import anyio.to_thread
import jwt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from service.config import Settings

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


async def hash_password(settings: Settings, password: str) -> str:
    # Argon2 is deliberately slow; keep it off the event loop.
    return await anyio.to_thread.run_sync(hasher(settings).hash, password)


async def verify_password(settings: Settings, password_hash: str | None, password: str) -> bool:
    ph = hasher(settings)

    def _verify() -> bool:
        try:
            return ph.verify(password_hash or _dummy_hash(ph), password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

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
