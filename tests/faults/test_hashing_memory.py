"""A wave of logins cannot exhaust a process's memory: at the production Argon2id cost (64 MiB a
hash) a real `inkwell serve` runs at most INKWELL_ARGON2_MAX_CONCURRENT hashes at once, so its
peak RSS (the kernel's high-water mark, /proc/<pid>/status VmHWM) stays within its base and that
many hashes however many logins arrive together; unbounded, 16 took one process to 1,131 MiB. A
hash that finds no slot in time is refused with 503, Retry-After and a reason, and counted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PostgresServer
from tests.support.server import ServerProcess, running_server, server_env

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

MIB = 1024 * 1024
HASH_MIB = 64
PRODUCTION_ARGON2 = {
    "INKWELL_ARGON2_TIME_COST": "3",
    "INKWELL_ARGON2_MEMORY_COST_KIB": str(HASH_MIB * 1024),
    "INKWELL_ARGON2_PARALLELISM": "4",
}
PASSWORD = "correct-horse-battery"


def memory(pid: int, field: str) -> int:
    """A /proc/<pid>/status memory line (VmRSS, VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def signup(name: str) -> dict[str, dict[str, str]]:
    return {"user": {"username": name, "email": f"{name}@example.org", "password": PASSWORD}}


def login(name: str) -> dict[str, dict[str, str]]:
    return {"user": {"email": f"{name}@example.org", "password": PASSWORD}}


@pytest.fixture
def database(postgres: PostgresServer) -> Iterator[str]:
    # PostgreSQL: on SQLite a login's write transaction holds the database's one write lock while it
    # hashes, so logins never hash concurrently there.
    url = postgres.create_database("inkwell_hashing")
    yield url
    postgres.drop_database(url)


@pytest.fixture
def bounded(database: str) -> Iterator[ServerProcess]:
    env = server_env(
        database, **PRODUCTION_ARGON2, INKWELL_ARGON2_MAX_CONCURRENT="2", INKWELL_ARGON2_WAIT_SECONDS="120"
    )
    with running_server(env, workers=1) as server:
        yield server


async def test_many_concurrent_logins_stay_within_the_memory_budget(bounded: ServerProcess) -> None:
    pid = bounded.process.pid
    async with httpx.AsyncClient(base_url=bounded.url, timeout=120) as client:
        # Warm: one registration and one login, each a hash, so the base includes what a hash
        # leaves behind (the allocator's arenas, argon2's code) and not only what start-up takes.
        assert (await client.post("/api/users", json=signup("warm"))).status_code == 201
        assert (await client.post("/api/users/login", json=login("warm"))).status_code == 200
        base = memory(pid, "VmRSS")
        names = [f"wave{index}" for index in range(12)]
        registered = await asyncio.gather(*(client.post("/api/users", json=signup(name)) for name in names))
        assert [response.status_code for response in registered] == [201] * len(names)
        logins = [client.post("/api/users/login", json=login(name)) for name in names * 2]
        answered = await asyncio.gather(*logins)
        assert [response.status_code for response in answered] == [200] * len(logins)
        peak = memory(pid, "VmHWM")
    # Two hashes at a time, and room for the requests around them; 24 at once would be 1.5 GiB.
    budget = base + 2 * HASH_MIB * MIB + 48 * MIB
    assert peak <= budget, f"peak {peak / MIB:.0f} MiB over {budget / MIB:.0f} MiB (base {base / MIB:.0f})"


async def test_a_hash_without_a_slot_in_time_is_refused_with_503_and_counted(database: str) -> None:
    env = server_env(
        database, **PRODUCTION_ARGON2, INKWELL_ARGON2_MAX_CONCURRENT="1", INKWELL_ARGON2_WAIT_SECONDS="0"
    )
    with running_server(env, workers=1) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            answered = await asyncio.gather(
                *(client.post("/api/users/login", json=login(f"nobody{index}")) for index in range(8))
            )
            metrics = (await client.get("/metrics")).text
        output = server.output()
    statuses = [response.status_code for response in answered]
    # Unknown users: the login still verifies (against a dummy hash, for equal timing), so each needs
    # a slot; the first takes it, and the others, arriving while it hashes, are refused at once.
    assert set(statuses) <= {401, 503}, statuses
    refused = [response for response in answered if response.status_code == 503]
    assert 401 in statuses, statuses
    assert refused, statuses
    for response in refused:
        assert response.json() == {"errors": {"server": ["is busy, retry shortly"]}}
        assert int(response.headers["retry-after"]) > 0
    assert f"inkwell_password_hash_refusals_total {float(len(refused))}" in metrics
    assert f"inkwell_password_hash_waits_total {float(len(refused))}" in metrics
    assert output.count("answered 503") == len(refused)
    assert "HashingBusy" in output
