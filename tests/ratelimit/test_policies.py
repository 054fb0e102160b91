"""Each rate limit policy as a client meets it, in one process (the limits' in-memory store, as in
development): reads and registrations per client IP, writes per signed-in user, logins per IP and,
per account, failures that make the next attempt wait longer and longer; the 429 in the Conduit
format with Retry-After and the IETF draft's RateLimit fields; probes and scrapes never limited."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.main import create_app
from service.ratelimit import Limiter
from tests.conftest import on_test_transaction, test_settings
from tests.factories import PASSWORD, create_user
from tests.support.asgi import asgi_client

pytestmark = pytest.mark.anyio

# Every limit off but the one a test sets, so each test meets only its own policy.
OFF = {
    "rate_limits_enabled": True,
    "rate_limit_login": "",
    "rate_limit_registration": "",
    "rate_limit_writes": "",
    "rate_limit_reads": "",
}
# The middle of a minute (and of an hour and a day): every request of a test falls in one window.
NOON = 1_800_000_000 // 86400 * 86400 + 43200 + 30
RETRY = re.compile(r"limit exceeded, retry in (\d+) s")


@pytest.fixture
def limited(database_url: str, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> Any:
    def make(**limits: Any) -> Any:
        app = create_app(test_settings(database_url, **(OFF | limits)), engine=engine)
        limiter: Limiter = app.state.limiter
        limiter.clock = lambda: NOON
        return on_test_transaction(app, sessionmaker)

    return make


@pytest.fixture
async def client_of() -> AsyncIterator[Any]:
    clients: list[httpx.AsyncClient] = []

    def make(app: Any) -> httpx.AsyncClient:
        client = asgi_client(app)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def checks(policy: str, result: str) -> float:
    return (
        REGISTRY.get_sample_value("inkwell_rate_limit_checks_total", {"policy": policy, "result": result})
        or 0.0
    )


def from_ip(address: str) -> dict[str, str]:
    # The test client's peer is 127.0.0.1, a trusted proxy by default: it forwards for `address`.
    return {"X-Forwarded-For": address}


async def test_reads_are_limited_per_client_ip_with_a_conduit_429_and_the_drafts_fields(
    limited: Any, client_of: Any
) -> None:
    client = client_of(limited(rate_limit_reads="3/minute"))
    refused_before = checks("reads", "limited")
    allowed = [await client.get("/api/tags", headers=from_ip("203.0.113.7")) for _ in range(3)]
    assert [r.status_code for r in allowed] == [200, 200, 200]
    # Allowed responses say what is left: 30 s to the end of the minute.
    assert [r.headers["ratelimit"] for r in allowed] == [f'"reads";r={n};t=30' for n in (2, 1, 0)]
    assert {r.headers["ratelimit-policy"] for r in allowed} == {'"reads";q=3;w=60'}

    refused = await client.get("/api/tags", headers=from_ip("203.0.113.7"))
    assert refused.status_code == 429
    assert refused.json() == {"errors": {"rate": ["limit exceeded, retry in 30 s"]}}
    assert refused.headers["retry-after"] == "30"
    assert refused.headers["ratelimit"] == '"reads";r=0;t=30'
    assert refused.headers["ratelimit-policy"] == '"reads";q=3;w=60'
    assert refused.headers["content-type"].startswith("application/json")
    assert checks("reads", "limited") == refused_before + 1

    # Another client has its own budget; a browser's script may read the fields.
    other = await client.get("/api/tags", headers=from_ip("203.0.113.8") | {"Origin": "https://app.example"})
    assert other.status_code == 200
    exposed = {name.strip().lower() for name in other.headers["access-control-expose-headers"].split(",")}
    assert {"ratelimit", "ratelimit-policy", "retry-after"} <= exposed


async def test_an_untrusted_peer_cannot_choose_its_address(limited: Any, client_of: Any) -> None:
    app = limited(rate_limit_reads="2/minute", trusted_proxies=["10.0.0.1"])
    client = client_of(app)
    # 127.0.0.1 is no longer a trusted proxy: each request names another address, and all count as its.
    statuses = [
        (await client.get("/api/tags", headers=from_ip(f"198.51.100.{n}"))).status_code for n in range(3)
    ]
    assert statuses == [200, 200, 429]


async def test_probes_and_the_scrape_are_never_limited(limited: Any, client_of: Any) -> None:
    client = client_of(limited(rate_limit_reads="1/minute"))
    assert (await client.get("/api/tags")).status_code == 200
    assert (await client.get("/api/tags")).status_code == 429
    for path in ("/healthz", "/readyz", "/metrics"):
        for _ in range(3):
            response = await client.get(path)
            assert response.status_code == 200, (path, response.text)
            assert "ratelimit" not in response.headers


async def test_registrations_are_limited_per_client_ip(limited: Any, client_of: Any) -> None:
    client = client_of(limited(rate_limit_registration="2/hour"))

    async def register(name: str, address: str) -> httpx.Response:
        user = {"username": name, "email": f"{name}@example.org", "password": PASSWORD}
        return await client.post("/api/users", json={"user": user}, headers=from_ip(address))

    assert (await register("reg_a", "192.0.2.1")).status_code == 201
    assert (await register("reg_b", "192.0.2.1")).status_code == 201
    third = await register("reg_c", "192.0.2.1")
    assert third.status_code == 429
    assert third.headers["ratelimit-policy"] == '"registration";q=2;w=3600'
    assert (await register("reg_c", "192.0.2.2")).status_code == 201


async def test_writes_are_limited_per_user_wherever_they_come_from(limited: Any, client_of: Any) -> None:
    client = client_of(limited(rate_limit_writes="2/minute"))
    alice, bob = await create_user(client), await create_user(client)

    async def update_bio(headers: dict[str, str], address: str) -> int:
        body = {"user": {"bio": "hello"}}
        return (await client.put("/api/user", json=body, headers=headers | from_ip(address))).status_code

    # Alice's budget follows her from one address to another; Bob's, from her address, is his own.
    assert [await update_bio(alice.headers, ip) for ip in ("192.0.2.10", "192.0.2.11", "192.0.2.12")] == [
        200,
        200,
        429,
    ]
    assert await update_bio(bob.headers, "192.0.2.10") == 200
    # Reads are not writes: Alice still reads.
    assert (await client.get("/api/user", headers=alice.headers)).status_code == 200


async def test_logins_are_limited_per_client_ip(limited: Any, client_of: Any) -> None:
    client = client_of(limited(rate_limit_login="2/minute"))
    account = await create_user(client)
    login = {"user": {"email": account.email, "password": PASSWORD}}
    assert (await client.post("/api/users/login", json=login)).status_code == 200
    form = {"username": account.username, "password": PASSWORD}
    assert (await client.post("/api/token", data=form)).status_code == 200
    refused = await client.post("/api/users/login", json=login)
    assert refused.status_code == 429
    assert RETRY.fullmatch(refused.json()["errors"]["rate"][0])
    assert refused.headers["ratelimit-policy"] == '"login";q=2;w=60'


async def test_an_accounts_failed_logins_make_it_wait_longer_and_longer_until_one_succeeds(
    limited: Any, client_of: Any
) -> None:
    app = limited(
        rate_limit_login_free_failures=3,
        rate_limit_login_backoff_seconds=100,
        rate_limit_login_backoff_max_seconds=1000,
    )
    client = client_of(app)
    limiter: Limiter = app.state.limiter
    account = await create_user(client)

    async def login(password: str, *, login: str = account.email) -> httpx.Response:
        return await client.post("/api/users/login", json={"user": {"email": login, "password": password}})

    async def wait_out_the_lock() -> None:
        # As if the lock had expired: what the store would do on its own after Retry-After seconds.
        await limiter.storage.clear(limiter._account_keys(account.email)[1])

    # Three free failures, and a fourth that locks the account for 100 s.
    assert [(await login("wrong")).status_code for _ in range(4)] == [401] * 4
    locked = await login(PASSWORD)  # even the right password waits
    assert locked.status_code == 429
    assert locked.json() == {"errors": {"rate": ["too many failed logins for this account, retry in 100 s"]}}
    assert locked.headers["retry-after"] == "100"
    assert locked.headers["ratelimit"] == '"login_account";r=0;t=100'
    assert locked.headers["ratelimit-policy"] == '"login_account";q=3'
    # The same account through the OAuth2 endpoint, by another spelling of its email, is locked too.
    token = await client.post("/api/token", data={"username": account.email.upper(), "password": "wrong"})
    assert token.status_code == 429

    await wait_out_the_lock()
    assert (await login("wrong")).status_code == 401
    assert (await login(PASSWORD)).headers["retry-after"] == "200"  # twice as long

    await wait_out_the_lock()
    assert (await login(PASSWORD)).status_code == 200
    # The success reset the count: three free failures again.
    assert [(await login("wrong")).status_code for _ in range(3)] == [401] * 3
    assert (await login(PASSWORD)).status_code == 200


async def test_two_hundred_wrong_passwords_in_a_row_are_not_all_answered(
    limited: Any, client_of: Any
) -> None:
    # The defaults, as the service ships: the 200 guesses were all answered 401.
    client = client_of(limited(rate_limit_login_free_failures=5))
    account = await create_user(client)
    statuses = [
        (
            await client.post(
                "/api/users/login", json={"user": {"email": account.email, "password": f"guess{n}"}}
            )
        ).status_code
        for n in range(200)
    ]
    assert statuses[:6] == [401] * 6
    assert statuses.count(401) == 6
    assert statuses.count(429) == 194
