"""The limits' store (a real Redis) taken away and brought back: the login policies fail closed (503
with a reason: guesses are what they exist to count), reads, writes and registrations fail open (let
through, uncounted), and everything is limited again once Redis returns, without a restart."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from service.main import create_app
from tests.conftest import PostgresServer, test_settings
from tests.factories import PASSWORD, create_user
from tests.support.asgi import asgi_client
from tests.support.redis import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

REFUSED = {"errors": {"rate_limits": ["cannot be checked, so logins wait until they can; retry later"]}}


@pytest.fixture
async def clients(postgres: PostgresServer, redis: RedisServer) -> AsyncIterator[Any]:
    url = postgres.create_database("inkwell_limits_down")
    apps: list[Any] = []

    @contextlib.asynccontextmanager
    async def make(**limits: Any) -> AsyncIterator[httpx.AsyncClient]:
        # The cache off: without Redis it refuses writes itself (tests/faults/test_redis_down.py),
        # and this test is about what the limits do.
        settings = test_settings(
            url, redis_url=redis.url, cache_enabled=False, rate_limits_enabled=True, **limits
        )
        app = create_app(settings)
        apps.append(app)
        async with asgi_client(app) as client:
            yield client

    try:
        yield make
    finally:
        for app in apps:
            await app.state.limiter.close()
            await app.state.engine.dispose()
        postgres.drop_database(url)


def unavailable(policy: str) -> float:
    labels = {"policy": policy, "result": "unavailable"}
    return REGISTRY.get_sample_value("inkwell_rate_limit_checks_total", labels) or 0.0


async def test_logins_fail_closed_the_rest_open_and_all_recovers_when_redis_returns(
    clients: Any, redis: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async with clients() as client:
        await _logins_fail_closed_the_rest_open(client, redis)
    # Each refused login says why; the requests let through, once for the outage.
    logged = capsys.readouterr().out
    assert logged.count("login refused: rate limits unavailable") == 2
    assert logged.count("rate limits unavailable: logins refused, other requests let through uncounted") == 1
    assert logged.count("rate limits available again") == 1


async def _logins_fail_closed_the_rest_open(client: httpx.AsyncClient, redis: RedisServer) -> None:
    account = await create_user(client)
    login = {"user": {"email": account.email, "password": PASSWORD}}
    assert "ratelimit" in (await client.get("/api/tags")).headers

    redis.stop()
    before = {policy: unavailable(policy) for policy in ("login", "reads", "writes", "registration")}
    for attempt in (
        client.post("/api/users/login", json=login),
        client.post("/api/token", data={"username": account.username, "password": PASSWORD}),
    ):
        refused = await attempt
        assert refused.status_code == 503
        assert refused.json() == REFUSED
        assert int(refused.headers["retry-after"]) > 0
    assert unavailable("login") == before["login"] + 2

    read = await client.get("/api/tags")
    assert read.status_code == 200
    assert "ratelimit" not in read.headers  # nothing was counted
    written = await client.put("/api/user", json={"user": {"bio": "still here"}}, headers=account.headers)
    assert written.status_code == 200
    assert (await create_user(client)).token
    assert unavailable("reads") == before["reads"] + 1
    assert unavailable("writes") == before["writes"] + 1
    assert unavailable("registration") == before["registration"] + 1

    redis.start()
    back = await client.post("/api/users/login", json=login)
    assert back.status_code == 200, back.text
    assert back.headers["ratelimit-policy"].startswith('"login";')
    assert "ratelimit" in (await client.get("/api/tags")).headers


async def test_the_per_account_backoff_fails_closed_too(clients: Any, redis: RedisServer) -> None:
    # With the per-IP login policy off, the account's own check is what meets the outage.
    async with clients(rate_limit_login="") as client:
        await _the_per_account_backoff_fails_closed(client, redis)


async def _the_per_account_backoff_fails_closed(client: httpx.AsyncClient, redis: RedisServer) -> None:
    account = await create_user(client)
    redis.stop()
    before = unavailable("login_account")
    refused = await client.post(
        "/api/users/login", json={"user": {"email": account.email, "password": "wrong"}}
    )
    assert refused.status_code == 503
    assert refused.json() == REFUSED
    assert unavailable("login_account") == before + 1
    redis.start()
    wrong = await client.post(
        "/api/users/login", json={"user": {"email": account.email, "password": "wrong"}}
    )
    assert wrong.status_code == 401
