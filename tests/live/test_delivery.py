"""Delivery across two server processes sharing one Redis: topics, routing of `me`, replay, coalescing,
authentication and what is refused."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from websockets.exceptions import ConnectionClosed

from service.auth.security import create_token
from service.config import Settings
from service.live.broker import RedisBroker
from service.live.events import Event
from tests.live.conftest import (
    SECRET,
    article,
    closed,
    comment,
    eventually,
    live_env,
    receive,
    register,
    socket,
    subscribe,
    until,
)
from tests.support.otlp import otlp_http_receiver
from tests.support.redis import RedisServer
from tests.support.server import ServerProcess, running_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

Servers = tuple[ServerProcess, ServerProcess]


async def test_a_comment_published_once_reaches_subscribers_on_both_processes(
    servers: Servers, broker: RedisBroker
) -> None:
    one, two = servers
    author = await register(one)
    slug = await article(one, author)
    async with socket(one) as first, socket(two) as second:
        assert first.subprotocol == "inkwell.live.v1"
        for ws in (first, second):
            assert await subscribe(ws, f"article:{slug}") == {
                "type": "subscribed",
                "topics": [f"article:{slug}"],
            }
        # An internal event on the same bus is never sent: the first frame is the comment.
        await broker.publish(
            [Event(topic=f"user:{author.id}", type="user.deactivated", data={}), comment(slug, 1)]
        )
        for ws in (first, second):
            frame = await receive(ws)
            assert frame["topic"] == f"article:{slug}"
            assert frame["type"] == "comment.created"
            assert frame["comment"]["id"] == 1
            assert frame["id"]


async def test_an_article_that_does_not_exist_is_refused_as_rest_refuses_it(servers: Servers) -> None:
    async with socket(servers[0]) as ws:
        assert await subscribe(ws, "article:no-such-article") == {
            "type": "error",
            "errors": {"article": ["not found"]},
        }
        assert await subscribe(ws, "comments") == {
            "type": "error",
            "errors": {"topics": ["'comments' is not article:<slug> or me"]},
        }


async def test_me_needs_a_token_given_in_the_subprotocol_or_the_first_message(
    servers: Servers, broker: RedisBroker
) -> None:
    one, two = servers
    reader = await register(one)
    async with socket(one) as anonymous:
        answer = await subscribe(anonymous, "me")
        assert answer["type"] == "error"
        assert list(answer["errors"]) == ["token"]
    async with socket(two, reader.token) as by_header, socket(one) as by_message:
        await by_message.send(json.dumps({"type": "auth", "token": reader.token}))
        assert await receive(by_message) == {"type": "authenticated", "user": reader.id}
        for ws in (by_header, by_message):
            assert await subscribe(ws, "me") == {"type": "subscribed", "topics": ["me"]}
        await broker.publish(
            [Event(topic=f"user:{reader.id}", type="profile.followed", data={"profile": {"username": "fan"}})]
        )
        for ws in (by_header, by_message):
            frame = await receive(ws)
            assert (frame["topic"], frame["type"], frame["profile"]) == (
                "me",
                "profile.followed",
                {"username": "fan"},
            )


async def test_a_bad_token_closes_the_socket_and_an_expiring_one_closes_it_when_it_expires(
    servers: Servers,
) -> None:
    one, _ = servers
    reader = await register(one)
    async with socket(one, "not-a-token") as ws:
        assert await closed(ws) == (4401, "token is invalid or expired")
    settings = Settings(secret_key=SECRET, jwt_ttl_seconds=60)
    # Issued 57 s ago with a 60 s lifetime: valid now, expired in 3 s.
    expiring = create_token(settings, reader.id, now=datetime.now(UTC) - timedelta(seconds=57))
    async with socket(one, expiring) as ws:
        assert await subscribe(ws, "me") == {"type": "subscribed", "topics": ["me"]}
        assert await closed(ws) == (4401, "token expired")


async def test_me_carries_what_followed_authors_publish_and_follows_change_with_the_bus(
    servers: Servers, broker: RedisBroker
) -> None:
    import httpx

    one, two = servers
    reader, followed, other = await register(one), await register(one), await register(one)
    async with httpx.AsyncClient(base_url=one.url) as client:
        answer = await client.post(
            f"/api/profiles/{followed.username}/follow", headers={"Authorization": f"Token {reader.token}"}
        )
        assert answer.status_code == 200
    async with socket(two, reader.token) as ws:
        await subscribe(ws, "me")
        published = {"article": {"slug": "new-one"}}
        await broker.publish(
            [
                Event(
                    topic=f"author:{other.id}", type="article.published", data={"article": {"slug": "unseen"}}
                ),
                Event(topic=f"author:{followed.id}", type="article.published", data=published),
                # Now they follow `other` too (the internal event the follow's commit publishes).
                Event(
                    topic=f"user:{reader.id}",
                    type="following.changed",
                    data={"author": other.id, "following": True},
                ),
                Event(
                    topic=f"author:{other.id}", type="article.published", data={"article": {"slug": "seen"}}
                ),
            ]
        )
        first, second = await receive(ws), await receive(ws)
        assert (first["topic"], first["article"]) == ("me", published["article"])
        assert second["article"] == {"slug": "seen"}


async def test_replay_after_the_last_seen_id_and_resync_when_it_is_older_than_the_bus(
    servers: Servers, broker: RedisBroker
) -> None:
    one, two = servers
    author = await register(one)
    slug = await article(one, author)
    async with socket(one) as ws:
        await subscribe(ws, f"article:{slug}")
        await broker.publish([comment(slug, 1)])
        last_seen = (await receive(ws))["id"]
    # Missed while disconnected; the other article's event is not theirs.
    await broker.publish([comment(slug, 2), comment("another-article", 9), comment(slug, 3)])
    async with socket(two) as ws:
        assert (await subscribe(ws, f"article:{slug}", since=last_seen))["type"] == "subscribed"
        await broker.publish([comment(slug, 4)])
        numbers = [(await receive(ws))["comment"]["id"] for _ in range(3)]
        assert numbers == [2, 3, 4]
    async with socket(two) as ws:
        await subscribe(ws, f"article:{slug}", since="1-0")
        assert await receive(ws) == {"type": "resync", "topics": [f"article:{slug}"]}


async def test_favourite_counts_are_coalesced_to_the_latest(servers: Servers, broker: RedisBroker) -> None:
    one, _ = servers
    author = await register(one)
    slug = await article(one, author)
    async with socket(one) as ws:
        await subscribe(ws, f"article:{slug}")
        await broker.publish(
            [
                Event(
                    topic=f"article:{slug}",
                    type="article.favorites",
                    data={"article": {"slug": slug, "favoritesCount": count}},
                )
                for count in range(1, 21)
            ]
        )
        counts: list[int] = []
        while not counts or counts[-1] != 20:
            frame = await until(ws, "article.favorites")
            counts.append(frame["article"]["favoritesCount"])
        # The first at once, then the latest when the interval ends: not one frame per click.
        assert len(counts) <= 3, counts


async def test_a_deactivated_users_sockets_are_closed(servers: Servers, broker: RedisBroker) -> None:
    one, two = servers
    reader = await register(one)
    async with socket(one, reader.token) as first, socket(two, reader.token) as second:
        for ws in (first, second):
            await subscribe(ws, "me")
        await broker.publish([Event(topic=f"user:{reader.id}", type="user.deactivated", data={})])
        for ws in (first, second):
            assert await closed(ws) == (4403, "user deactivated")


async def test_connections_per_user_are_limited_across_processes_even_when_concurrent(
    servers: Servers,
) -> None:
    one, two = servers  # INKWELL_LIVE_MAX_CONNECTIONS_PER_USER=2
    reader = await register(one)

    async def attempt(server: ServerProcess) -> str:
        async with socket(server, reader.token) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            try:
                frame = await receive(ws)
            except ConnectionClosed as exc:  # the refusal
                return f"closed {exc.rcvd.code if exc.rcvd else None}"
            await started.wait()  # held open until every attempt has its answer
            return str(frame["type"])

    started = asyncio.Event()
    tasks = [asyncio.create_task(attempt(server)) for server in (one, two) * 3]

    async def answered() -> bool:
        return sum(task.done() for task in tasks) >= 4

    await eventually(answered, "the refusals")
    started.set()
    outcomes = sorted(await asyncio.gather(*tasks))
    assert outcomes == ["closed 4429"] * 4 + ["pong"] * 2


async def test_bad_messages_close_the_socket_with_4400(servers: Servers) -> None:
    for message in ("not json", json.dumps({"type": "subscribe", "topics": "article:x"}), "x" * 20_000):
        async with socket(servers[0]) as ws:
            await ws.send(message)
            code, reason = await closed(ws)
            assert code == 4400
            assert reason is not None
            assert reason.startswith("bad message")


async def test_a_delivery_is_traced_with_a_link_to_the_write_that_published_it(redis: RedisServer) -> None:
    trace_id, span_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    with otlp_http_receiver() as receiver:
        env = live_env(redis, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY="100")
        with running_server(env) as server:
            author = await register(server)
            slug = await article(server, author)
            broker = RedisBroker(redis.url, retain=1000)
            try:
                async with socket(server) as ws:
                    await subscribe(ws, f"article:{slug}")
                    event = comment(slug, 5)
                    traced = Event(
                        event.topic,
                        event.type,
                        event.data,
                        trace={"traceparent": f"00-{trace_id}-{span_id}-01"},
                    )
                    await broker.publish([traced])
                    assert (await receive(ws))["comment"]["id"] == 5
            finally:
                await broker.close()
            spans = await asyncio.to_thread(
                receiver.wait_for, lambda spans: any(span.name == "live.deliver" for span in spans)
            )
    (delivery,) = [span for span in spans if span.name == "live.deliver"]
    assert delivery.links == [trace_id]
    assert delivery.trace_id != trace_id  # its own trace: one write fans out to many deliveries
    assert delivery.attributes["live.recipients"] == 1
