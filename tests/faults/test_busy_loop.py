"""A busy service is slow, never unavailable: writes made while the event loop is saturated (here:
held for longer than the cache's Redis timeout, as CPU-bound work or a flood of requests holds it)
answer as they would on an idle loop, never 503, against a real Redis that answers each of them
well within that timeout. A Redis that really does not answer still refuses writes (tests/faults/
test_redis_down.py), and a 503 says why in the log."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time

import httpx
import pytest
from redis import Redis

from tests.factories import create_article, create_user
from tests.support.redis import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# Longer than the cache's Redis timeout (0.5 s): a round trip in flight when the loop is held finds,
# once it is let go, both its reply and its deadline due.
HOLD_SECONDS = 0.8
# Redis itself is busy this long (a script spinning on another connection), well under the timeout:
# so that the writes are waiting for its replies when the loop is held.
REDIS_BUSY_MS = 300
_SPIN = """
local start = redis.call('TIME')
repeat local now = redis.call('TIME')
until (now[1] - start[1]) * 1000000 + (now[2] - start[2]) >= tonumber(ARGV[1]) * 1000
"""


async def hold_the_loop(redis: RedisServer, times: int, stop: asyncio.Event) -> int:
    """`times` times: Redis is kept busy briefly, and while the writes wait on its replies the event
    loop is blocked for HOLD_SECONDS, doing nothing else, as under saturation."""
    spinner = Redis.from_url(redis.url)
    held = 0
    try:
        while held < times and not stop.is_set():
            busy = threading.Thread(target=spinner.eval, args=(_SPIN, 0, REDIS_BUSY_MS))
            busy.start()
            await asyncio.sleep(REDIS_BUSY_MS / 3000)  # the writes get as far as Redis
            time.sleep(HOLD_SECONDS)  # noqa: ASYNC251 - holding the loop is the point
            busy.join()
            held += 1
            await asyncio.sleep(0.05)
    finally:
        spinner.close()
    return held


async def test_writes_on_a_saturated_loop_are_slow_but_never_503(
    client: httpx.AsyncClient, redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    author = await create_user(client)
    article = await create_article(client, author)
    readers = [await create_user(client) for _ in range(12)]
    path = f"/api/articles/{article['slug']}/favorite"

    async def write_again_and_again(reader_headers: dict[str, str]) -> list[int]:
        statuses = []
        for _ in range(6):
            statuses.append((await client.post(path, headers=reader_headers)).status_code)
            statuses.append((await client.delete(path, headers=reader_headers)).status_code)
        return statuses

    stop = asyncio.Event()
    hog = asyncio.create_task(hold_the_loop(redis, 5, stop))
    with caplog.at_level(logging.WARNING):
        results = await asyncio.gather(*(write_again_and_again(reader.headers) for reader in readers))
    stop.set()
    held = await hog
    assert held >= 3, "the loop was not held while the writes ran"
    statuses = [status for result in results for status in result]
    assert statuses.count(200) == len(statuses), {status: statuses.count(status) for status in set(statuses)}
    assert "503" not in caplog.text


async def test_a_redis_that_stops_answering_still_refuses_writes_and_the_503_says_why(
    client: httpx.AsyncClient, redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    author = await create_user(client)
    article = await create_article(client, author)
    path = f"/api/articles/{article['slug']}"
    assert redis.process is not None
    # Stopped, not killed: its connections stay open and nothing answers on them, so only the
    # timeout can tell (a killed Redis refuses at once: test_redis_down.py).
    redis.process.send_signal(signal.SIGSTOP)
    try:
        with caplog.at_level(logging.WARNING):
            started = time.monotonic()
            refused = await client.put(path, json={"article": {"body": "Edited"}}, headers=author.headers)
            waited = time.monotonic() - started
    finally:
        redis.process.send_signal(signal.SIGCONT)
    assert refused.status_code == 503, refused.text
    assert int(refused.headers["retry-after"]) > 0
    assert waited < 10
    logged = [record for record in caplog.records if "answered 503" in record.getMessage()]
    assert len(logged) == 1, caplog.text
    assert "CacheUnavailable" in logged[0].getMessage()
    assert (
        await client.put(path, json={"article": {"body": "Edited"}}, headers=author.headers)
    ).status_code == 200
