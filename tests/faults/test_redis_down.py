"""Without Redis the API keeps answering reads from the database, refuses writes with a 503 that
says why (a write it could not invalidate could be hidden by a stale read), and recovers on its own
when Redis returns. Nothing refused is written."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY

from tests.factories import create_article, create_user
from tests.support.redis import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

REFUSED = {"errors": {"cache": ["is unavailable, so writes wait until it is back; retry later"]}}


def cache_errors(operation: str) -> float:
    return REGISTRY.get_sample_value("inkwell_cache_errors_total", {"operation": operation}) or 0.0


async def test_reads_work_writes_wait_and_all_recovers_when_redis_returns(
    client: httpx.AsyncClient, redis: RedisServer
) -> None:
    author = await create_user(client)
    article = await create_article(client, author)
    path = f"/api/articles/{article['slug']}"
    assert (await client.get(path)).status_code == 200  # cached

    redis.stop()
    errors = cache_errors("get")
    read = await client.get(path)
    assert read.status_code == 200
    assert read.json()["article"]["body"] == "A body"
    assert cache_errors("get") == errors + 1

    refused = await client.put(path, json={"article": {"body": "Edited"}}, headers=author.headers)
    assert refused.status_code == 503
    assert refused.json() == REFUSED
    assert int(refused.headers["retry-after"]) > 0
    assert "Traceback" not in refused.text
    # Nothing was written: the author's own (never cached) read says so.
    mine = await client.get(path, headers=author.headers)
    assert mine.json()["article"]["body"] == "A body"

    redis.start()
    edited = await client.put(path, json={"article": {"body": "Edited"}}, headers=author.headers)
    assert edited.status_code == 200, edited.text
    assert (await client.get(path)).json()["article"]["body"] == "Edited"
    assert (await client.get(path)).json()["article"]["body"] == "Edited"
