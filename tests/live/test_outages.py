"""What ends sockets other than their clients: SIGTERM, Redis lost and back, a consumer too slow, an
idle socket, and a client IP past its limit. Each test that breaks something has its own processes."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket as sockets
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from service.live.broker import RedisBroker
from tests.live.conftest import (
    WAIT,
    article,
    closed,
    comment,
    eventually,
    live_env,
    metric,
    receive,
    register,
    socket,
    subscribe,
)
from tests.support.redis import RedisServer, redis_server
from tests.support.server import ServerProcess, running_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def refused_with(server: ServerProcess) -> int | None:
    """Opens a socket and pings: None when it is answered, else the code it was closed with."""
    try:
        async with socket(server) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            await receive(ws)
            return None
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else -1


async def test_sigterm_closes_open_sockets_with_1012_refuses_new_ones_and_the_process_exits(
    redis: RedisServer,
) -> None:
    # A drain long enough to connect in while /readyz says 503; the sockets must not wait for it.
    env = live_env(redis, INKWELL_DRAIN_SECONDS="8", INKWELL_GRACEFUL_TIMEOUT_SECONDS="5")
    with running_server(env) as server:
        async with socket(server) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            assert await receive(ws) == {"type": "pong"}
            server.process.send_signal(signal.SIGTERM)
            assert await closed(ws) == (1012, "service restart: reconnect")
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/readyz")).status_code == 503  # still draining: still serving
        assert await refused_with(server) == 1012
        assert await asyncio.to_thread(server.process.wait, 60) == 0


async def test_redis_lost_closes_sockets_with_1013_rest_goes_on_and_live_recovers_by_itself() -> None:
    with redis_server() as redis, running_server(live_env(redis)) as server:
        author = await register(server)
        slug = await article(server, author)
        async with socket(server) as ws:
            await subscribe(ws, f"article:{slug}")
            redis.stop()
            assert await closed(ws) == (1013, "live updates unavailable: reconnect later")
        assert await refused_with(server) == 1013
        async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as client:
            assert (await client.get(f"/api/articles/{slug}")).status_code == 200
        assert await metric(server, "inkwell_live_bus_up") == 0
        redis.start()

        async def accepted() -> bool:
            return await refused_with(server) is None

        await eventually(accepted, "a socket accepted once Redis is back")
        broker = RedisBroker(redis.url, retain=1000)
        try:
            async with socket(server) as ws:
                await subscribe(ws, f"article:{slug}")
                await broker.publish([comment(slug, 7)])
                assert (await receive(ws))["comment"]["id"] == 7
        finally:
            await broker.close()


@pytest.fixture(scope="module")
def tight(redis: RedisServer) -> Iterator[ServerProcess]:
    """A server with a small queue per socket, a short idle time and a low limit per client IP."""
    env = live_env(
        redis,
        INKWELL_LIVE_QUEUE_EVENTS="32",
        INKWELL_LIVE_IDLE_SECONDS="2",
        INKWELL_LIVE_MAX_CONNECTIONS_PER_IP="3",
    )
    with running_server(env) as server:
        yield server


async def test_a_consumer_that_does_not_read_is_closed_and_the_others_get_every_event(
    tight: ServerProcess, redis: RedisServer
) -> None:
    author = await register(tight)
    slug = await article(tight, author)
    broker = RedisBroker(redis.url, retain=10_000)

    # Random text, as permessage-deflate would shrink a repeated one to nothing.
    def big() -> str:
        return base64.b64encode(os.urandom(48 * 1024)).decode()

    total = 300  # about 20 MB: more than the kernel's, the libraries' and the queue's buffers together
    try:
        # The stalled client reads nothing once its library has buffered one frame, and its kernel
        # buffers little: a receive buffer left to autotune grows to tcp_rmem's maximum (32 MB here).
        raw = sockets.socket()
        raw.setsockopt(sockets.SOL_SOCKET, sockets.SO_RCVBUF, 16 * 1024)
        raw.connect(("127.0.0.1", tight.port))
        async with socket(tight, max_queue=1, sock=raw) as stalled, socket(tight) as reader:
            for ws in (stalled, reader):
                await subscribe(ws, f"article:{slug}")
            received = 0

            async def read_all() -> None:
                nonlocal received
                while received < total:
                    await receive(reader)
                    received += 1

            reading = asyncio.create_task(read_all())
            for start in range(0, total, 20):
                # In bursts the reader's queue holds, each once the reader has the one before.
                await broker.publish([comment(slug, n, big()) for n in range(start, start + 20)])

                async def caught_up(upto: int = start + 20) -> bool:
                    return received >= upto

                await eventually(caught_up, "the reader keeping up")

            async def cut_off() -> bool:
                return await metric(tight, 'inkwell_live_disconnects_total{reason="slow_consumer"}') >= 1

            await eventually(cut_off, "the slow consumer closed")
            await asyncio.wait_for(reading, WAIT * 2)
            assert received == total
            # It is closed; what it had buffered, it may still read first, but not everything.
            code, _ = await closed(stalled)
            assert code in {4409, None}  # None: the close frame was stuck behind what it never read
    finally:
        await broker.close()


async def test_a_socket_with_no_subscription_is_closed_when_idle(tight: ServerProcess) -> None:
    async with socket(tight) as ws:
        assert await closed(ws) == (4408, "idle: no subscription")


async def test_connections_per_ip_are_limited_even_when_concurrent(tight: ServerProcess) -> None:
    author = await register(tight)
    slug = await article(tight, author)  # subscribed, so the idle timeout does not close them
    held = asyncio.Event()

    async def attempt() -> str:
        try:
            async with socket(tight) as ws:
                await subscribe(ws, f"article:{slug}")
                await held.wait()
                return "open"
        except ConnectionClosed as exc:
            return f"closed {exc.rcvd.code if exc.rcvd else None}"

    tasks = [asyncio.create_task(attempt()) for _ in range(7)]

    async def refused() -> bool:
        return sum(task.done() for task in tasks) >= 4

    await eventually(refused, "the refusals")
    held.set()
    assert sorted(await asyncio.gather(*tasks)) == ["closed 4429"] * 4 + ["open"] * 3
