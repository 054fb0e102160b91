"""Two real `inkwell serve` processes in front of one Redis spend one budget: a client that spreads its
requests over both (as a load balancer does over pods) gets the quota once, not once per process."""

from __future__ import annotations

import httpx
import pytest

from tests.support.redis import RedisServer
from tests.support.server import migrate, running_server, server_env

pytestmark = pytest.mark.slow

QUOTA = 10


def spend(urls: list[str], requests: int) -> list[httpx.Response]:
    """`requests` reads, alternating between the processes."""
    with httpx.Client(timeout=10) as client:
        return [client.get(f"{urls[n % len(urls)]}/api/tags") for n in range(requests)]


def test_two_processes_share_one_budget_through_redis(redis: RedisServer) -> None:
    env = server_env(
        INKWELL_REDIS_URL=redis.url,
        INKWELL_RATE_LIMITS_ENABLED="true",
        INKWELL_RATE_LIMIT_READS=f"{QUOTA}/hour",
    )
    migrate(env)
    with (
        running_server(env, migrate_first=False) as first,
        running_server(env, migrate_first=False) as second,
    ):
        for _ in range(2):  # once more should the hour turn during the first try
            responses = spend([first.url, second.url], 2 * QUOTA)
            resets = [int(r.headers["ratelimit"].rpartition("t=")[2]) for r in responses]
            if resets == sorted(resets, reverse=True):
                break
            redis.stop()  # a new hour began mid-way: start again from an empty budget
            redis.start()
        statuses = [r.status_code for r in responses]
        assert statuses == [200] * QUOTA + [429] * QUOTA, statuses
        # Each process answered half of the allowed requests: neither kept a count of its own.
        remaining = [int(r.headers["ratelimit"].split(";r=")[1].split(";")[0]) for r in responses[:QUOTA]]
        assert remaining == list(range(QUOTA - 1, -1, -1))
