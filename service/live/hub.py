"""The hub, one per process: the open sockets, what each subscribed to, and the one reader task that
follows the bus and routes each event to the sockets that may see it (docs/live.md).

Routing. `article:<slug>` events go to that topic's subscribers. `user:<id>` events go to that user's
`me` subscriptions, and `author:<id>` events to the `me` subscriptions of the author's followers,
both delivered with the topic `me`. Whom a user follows is read from the database once, when their
first `me` subscription on this process is made, and kept up to date by the internal
`following.changed` events; `user.deactivated` closes that user's sockets. Internal types are never
sent. `article.favorites` is coalesced per article: at most one per `live_coalesce_seconds`, carrying
the latest count (a popular article would otherwise send one frame per click to every reader).

Back-pressure. Each socket has a bounded queue of frames (`live_queue_events`); routing never waits
on a socket: a socket whose queue is full is closed as a slow consumer, so one stalled client can
neither grow memory nor hold up the others. Every event has an id increasing along the bus, and a
socket is never sent an id at or below the last one it was sent, which makes a replay and the live
stream it overlaps with deliver each event once, in order.

Lifecycle. On SIGTERM (`drain`) every socket is closed with 1012 and new ones are refused with it;
when the reader loses the bus every socket is closed with 1013 and new ones are refused with it
until the reader, retrying with backoff, is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.trace import Link
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from service.config import Settings
from service.errors import ConduitError, Unauthorized
from service.live import limits
from service.live.broker import Broker, parse_id
from service.live.directory import Directory
from service.live.events import (
    ARTICLE,
    ARTICLE_FAVORITES,
    AUTHOR,
    FOLLOWING_CHANGED,
    ME,
    USER,
    USER_DEACTIVATED,
    Event,
    LiveUnavailable,
)
from service.observability.logging import TrustedProxies
from service.observability.metrics import (
    LIVE_BUS_UP,
    LIVE_CONNECTIONS,
    LIVE_DELIVERY_LAG,
    LIVE_DISCONNECTS,
    LIVE_EVENTS_DELIVERED,
    LIVE_SUBSCRIPTIONS,
)

logger = structlog.get_logger("inkwell.live")
tracer = trace.get_tracer("inkwell.live")
_propagator = TraceContextTextMapPropagator()


@dataclass(frozen=True)
class Close:
    """Why a socket is closed: its WebSocket close code and reason, and the metric's reason label."""

    code: int
    reason: str
    label: str


CLIENT = Close(1000, "", "client")
DRAIN = Close(1012, "service restart: reconnect", "drain")
BUS_LOST = Close(1013, "live updates unavailable: reconnect later", "bus_lost")
PROTOCOL = Close(4400, "bad message", "protocol")
UNAUTHENTICATED = Close(4401, "token is invalid or expired", "unauthenticated")
EXPIRED = Close(4401, "token expired", "expired")
DEACTIVATED = Close(4403, "user deactivated", "deactivated")
IDLE = Close(4408, "idle: no subscription", "idle")
SLOW_CONSUMER = Close(4409, "slow consumer: reconnect and resume", "slow_consumer")
TOO_MANY = Close(4429, "too many connections", "limit")
# A message the server failed on (a bug, logged): counted with the messages it could not take.
INTERNAL = Close(1011, "internal error", "protocol")

# Favourite counts already delivered per topic are forgotten after this many coalesce intervals.
_BACKOFF_START, _BACKOFF_MAX = 0.2, 5.0


@dataclass(frozen=True, slots=True)
class Frame:
    """An event as one socket will be sent it."""

    event: Event
    topic: str
    text: str


def _encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"))


@dataclass(eq=False)
class Connection:
    ip: str
    queue_size: int
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    user_id: int | None = None
    topics: set[str] = field(default_factory=set)
    opened_at: float = field(default_factory=time.monotonic)
    idle_since: float | None = field(default_factory=time.monotonic)
    slot_keys: list[str] = field(default_factory=list)
    # While a replay is read, live events wait here instead of the queue (see Hub.subscribe).
    held: list[tuple[Event, str]] | None = None
    last_id: tuple[int, int] = (0, 0)
    expiry: asyncio.TimerHandle | None = None

    def __post_init__(self) -> None:
        self.queue: asyncio.Queue[Frame | dict[str, Any]] = asyncio.Queue(self.queue_size)
        self.closed: asyncio.Future[Close] = asyncio.get_running_loop().create_future()

    def finish(self, why: Close) -> None:
        """Ends the socket for `why` (the endpoint closes it); the first reason given wins."""
        if not self.closed.done():
            self.closed.set_result(why)

    def send(self, frame: dict[str, Any]) -> None:
        self._put(frame)

    def offer(self, event: Event, topic: str, text: str | None = None) -> None:
        """Queues `event` on `topic`; `text` is its frame already encoded (once for every socket)."""
        if self.held is not None:
            self.held.append((event, topic))
            if len(self.held) > self.queue_size:
                self.finish(SLOW_CONSUMER)
            return
        position = parse_id(event.id)
        if position <= self.last_id:
            return  # sent already, by the replay it overlapped with
        self.last_id = position
        self._put(Frame(event, topic, text or _encode(event.frame(topic))))

    def _put(self, item: Frame | dict[str, Any]) -> None:
        if self.closed.done():
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.finish(SLOW_CONSUMER)

    def encode(self, item: Frame | dict[str, Any]) -> str:
        if isinstance(item, dict):
            return _encode(item)
        event = item.event
        LIVE_EVENTS_DELIVERED.labels(event.type).inc()
        if event.committed_at:
            LIVE_DELIVERY_LAG.observe(max(time.time() - event.committed_at, 0.0))
        return item.text


class SubscribeError(Exception):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


class Hub:
    def __init__(
        self, settings: Settings, *, broker: Broker, slots: limits.Slots, directory: Directory
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.slots = slots
        self.directory = directory
        # Sockets are counted per client IP as the rate limits count requests (INKWELL_TRUSTED_PROXIES).
        self.proxies = TrustedProxies(settings.trusted_proxies)
        self.connections: set[Connection] = set()
        self.articles: defaultdict[str, set[Connection]] = defaultdict(set)
        self.me: defaultdict[int, set[Connection]] = defaultdict(set)
        self.by_user: defaultdict[int, set[Connection]] = defaultdict(set)
        # Of the users with a `me` subscription here: whom they follow, and the reverse.
        self.follows: dict[int, set[int]] = {}
        self.followers: defaultdict[int, set[int]] = defaultdict(set)
        self._loading: defaultdict[int, list[list[Event]]] = defaultdict(list)
        self._favorites_sent: dict[str, float] = {}
        self._favorites_pending: dict[str, Event] = {}
        self.draining = False
        self.bus_up = False
        self._tasks: list[asyncio.Task[None]] = []
        self._first_read = asyncio.Event()
        self.stop_watching_drain: Callable[[], None] = lambda: None

    # Publishing: the hub is the app's Publisher; the bus is the broker's.
    async def publish(self, events: Sequence[Event]) -> None:
        await self.broker.publish(events)

    async def start(self, *, wait: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._tasks = [
            loop.create_task(self._read(), name="live-reader"),
            loop.create_task(self._housekeeping(), name="live-housekeeping"),
        ]
        # The first connection to the bus is waited for (briefly), so a process does not refuse the
        # sockets of its first seconds with 1013 merely because its reader had not dialled yet.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_read.wait(), wait)

    async def stop(self) -> None:
        self.drain()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._set_bus(up=False)
        await self.broker.close()
        await self.slots.close()

    def drain_soon(self) -> None:
        """From a signal handler (service.health's drain callbacks): drains on the loop's thread."""
        loop = getattr(self, "_loop", None)
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.drain)

    def drain(self) -> None:
        self.draining = True
        for connection in list(self.connections):
            connection.finish(DRAIN)

    def refusal(self) -> Close | None:
        """Why a new socket is closed at once, if it is."""
        if self.draining:
            return DRAIN
        if not self.bus_up:
            return BUS_LOST
        return None

    # Connections.
    async def admit(self, connection: Connection) -> Close | None:
        try:
            key = limits.ip_key(connection.ip)
            if not await self.slots.acquire(connection.id, {key: self.settings.live_max_connections_per_ip}):
                return TOO_MANY
        except LiveUnavailable:
            return BUS_LOST
        connection.slot_keys.append(key)
        self.connections.add(connection)
        LIVE_CONNECTIONS.inc()
        # A drain or a lost bus while the slot was taken: this socket is closed as the others were.
        refused = self.refusal()
        if refused is not None:
            connection.finish(refused)
        return None

    async def authenticate(self, connection: Connection, token: str) -> Close | dict[str, list[str]] | None:
        """Signs the socket in; a Close ends it, a dict is an error answered on it."""
        if connection.user_id is not None:
            return {"token": ["is already given"]}
        try:
            user_id, expires = await self.directory.signed_in(token)
        except Unauthorized:
            return UNAUTHENTICATED
        except ConduitError as exc:  # the database is unavailable: say so, as REST would (503)
            return exc.errors
        key = limits.user_key(user_id)
        try:
            if not await self.slots.acquire(
                connection.id, {key: self.settings.live_max_connections_per_user}
            ):
                return TOO_MANY
        except LiveUnavailable:
            return BUS_LOST
        connection.slot_keys.append(key)
        connection.user_id = user_id
        self.by_user[user_id].add(connection)
        delay = max(expires - time.time(), 0.0)
        connection.expiry = asyncio.get_running_loop().call_later(delay, connection.finish, EXPIRED)
        return None

    async def release(self, connection: Connection) -> None:
        if connection not in self.connections:
            return
        self.connections.discard(connection)
        LIVE_CONNECTIONS.dec()
        self._drop_topics(connection, set(connection.topics))
        if connection.user_id is not None:
            self._discard(self.by_user, connection.user_id, connection)
        if connection.expiry is not None:
            connection.expiry.cancel()
        await self.slots.release(connection.id, connection.slot_keys)

    # Subscriptions.
    async def subscribe(self, connection: Connection, topics: Sequence[str], since: str | None) -> None:
        new = list(dict.fromkeys(topic for topic in topics if topic not in connection.topics))
        if len(connection.topics) + len(new) > self.settings.live_max_topics:
            raise SubscribeError({"topics": [f"at most {self.settings.live_max_topics} per connection"]})
        if since is not None:
            try:
                parse_id(since)
            except ValueError:
                raise SubscribeError({"since": ["is not an event id"]}) from None
        for topic in new:
            if topic == ME:
                if connection.user_id is None:
                    raise SubscribeError({"token": ["is missing: `me` needs a signed-in user"]})
            elif topic.startswith(ARTICLE) and len(topic) > len(ARTICLE):
                if not await self.directory.article_exists(
                    topic.removeprefix(ARTICLE), reader=connection.user_id
                ):
                    raise SubscribeError({"article": ["not found"]})
            else:
                raise SubscribeError({"topics": [f"{topic[:100]!r} is not article:<slug> or me"]})
        user_id = connection.user_id
        authors: set[int] | None = None
        # Whom the user follows, read before anything is added: nothing below waits, so a socket
        # released meanwhile cannot be left in an index.
        while ME in new and user_id is not None and user_id not in self.me and authors is None:
            authors = await self._followed(user_id)
        if connection.closed.done() or connection not in self.connections:
            return
        if since is not None and new:
            connection.held = []
        for topic in new:
            connection.topics.add(topic)
            if topic == ME:
                assert user_id is not None
                if user_id not in self.me:
                    assert authors is not None
                    self.follows[user_id] = authors
                    for author in authors:
                        self.followers[author].add(user_id)
                self.me[user_id].add(connection)
                LIVE_SUBSCRIPTIONS.labels("me").inc()
            else:
                self.articles[topic].add(connection)
                LIVE_SUBSCRIPTIONS.labels("article").inc()
        connection.idle_since = None if connection.topics else connection.idle_since
        connection.send({"type": "subscribed", "topics": new})
        if since is not None and new:
            await self._replay(connection, set(new), since)

    def unsubscribe(self, connection: Connection, topics: Sequence[str]) -> None:
        gone = {topic for topic in topics if topic in connection.topics}
        self._drop_topics(connection, gone)
        if not connection.topics and connection.idle_since is None:
            connection.idle_since = time.monotonic()
        connection.send({"type": "unsubscribed", "topics": sorted(gone)})

    def _drop_topics(self, connection: Connection, topics: set[str]) -> None:
        for topic in topics:
            connection.topics.discard(topic)
            if topic == ME and connection.user_id is not None:
                self._discard(self.me, connection.user_id, connection)
                if connection.user_id not in self.me:
                    self._forget_follows(connection.user_id)
                LIVE_SUBSCRIPTIONS.labels("me").dec()
            else:
                self._discard(self.articles, topic, connection)
                LIVE_SUBSCRIPTIONS.labels("article").dec()

    @staticmethod
    def _discard(index: defaultdict[Any, set[Connection]], key: Any, connection: Connection) -> None:
        members = index.get(key)
        if members is not None:
            members.discard(connection)
            if not members:
                del index[key]

    async def _followed(self, user_id: int) -> set[int]:
        """Whom the user follows, with the changes that arrived while the read ran applied, in order."""
        changes: list[Event] = []
        self._loading[user_id].append(changes)
        try:
            authors = await self.directory.followed_by(user_id)
        finally:
            self._loading[user_id].remove(changes)
            if not self._loading[user_id]:
                del self._loading[user_id]
        for change in changes:
            self._apply_follow(authors, change)
        return authors

    def _forget_follows(self, user_id: int) -> None:
        for author in self.follows.pop(user_id, set()):
            followers = self.followers.get(author)
            if followers is not None:
                followers.discard(user_id)
                if not followers:
                    del self.followers[author]

    @staticmethod
    def _apply_follow(authors: set[int], event: Event) -> None:
        author = int(event.data["author"])
        if event.data.get("following"):
            authors.add(author)
        else:
            authors.discard(author)

    async def _replay(self, connection: Connection, topics: set[str], since: str) -> None:
        try:
            events = await self.broker.since(since)
        except LiveUnavailable:
            events = None
        held, connection.held = connection.held or [], None
        routed: list[tuple[Event, str]] = []
        if events is not None:
            for event in _latest_favorites(events):
                topic = self._topic_for(connection, event, topics)
                if topic is not None:
                    routed.append((event, topic))
        if events is None or len(routed) > connection.queue_size:
            # What the bus no longer holds (or more than the socket may have waiting): re-fetch.
            connection.send({"type": "resync", "topics": sorted(topics)})
            routed = []
        for event, topic in sorted([*routed, *held], key=lambda pair: parse_id(pair[0].id)):
            connection.offer(event, topic)

    def _topic_for(self, connection: Connection, event: Event, topics: set[str]) -> str | None:
        """The topic `connection` receives `event` on, among `topics`; None if it does not."""
        if event.internal:
            return None
        if event.topic.startswith(ARTICLE):
            return event.topic if event.topic in topics else None
        if ME not in topics or connection.user_id is None:
            return None
        if event.topic == f"{USER}{connection.user_id}":
            return ME
        if event.topic.startswith(AUTHOR):
            author = int(event.topic.removeprefix(AUTHOR))
            return ME if author in self.follows.get(connection.user_id, set()) else None
        return None

    # Routing what the reader brings.
    def dispatch(self, events: Iterable[Event]) -> None:
        for event in events:
            try:
                self._dispatch(event)
            except (KeyError, ValueError, TypeError):
                logger.exception("live event not routed", event_type=event.type, topic=event.topic)

    def _dispatch(self, event: Event) -> None:
        if event.topic.startswith(USER):
            user_id = int(event.topic.removeprefix(USER))
            if event.type == FOLLOWING_CHANGED:
                self._following_changed(user_id, event)
            elif event.type == USER_DEACTIVATED:
                for connection in list(self.by_user.get(user_id, ())):
                    connection.finish(DEACTIVATED)
            if event.internal:
                return
            self._deliver(event, [(connection, ME) for connection in self.me.get(user_id, ())])
        elif event.topic.startswith(AUTHOR):
            author = int(event.topic.removeprefix(AUTHOR))
            targets = [
                (connection, ME)
                for follower in self.followers.get(author, ())
                for connection in self.me.get(follower, ())
            ]
            self._deliver(event, targets)
        elif event.topic.startswith(ARTICLE) and not event.internal:
            if event.type == ARTICLE_FAVORITES and not self._favorites_due(event):
                return
            self._deliver(
                event, [(connection, event.topic) for connection in self.articles.get(event.topic, ())]
            )

    def _following_changed(self, user_id: int, event: Event) -> None:
        for changes in self._loading.get(user_id, ()):
            changes.append(event)
        authors = self.follows.get(user_id)
        if authors is None:
            return
        author = int(event.data["author"])
        self._apply_follow(authors, event)
        if author in authors:
            self.followers[author].add(user_id)
        else:
            followers = self.followers.get(author)
            if followers is not None:
                followers.discard(user_id)
                if not followers:
                    del self.followers[author]

    def _favorites_due(self, event: Event) -> bool:
        """Whether a favourite count goes out now; if not, the latest is sent when the interval ends."""
        window = self.settings.live_coalesce_seconds
        now = time.monotonic()
        sent = self._favorites_sent.get(event.topic)
        if sent is None or now - sent >= window:
            self._favorites_sent[event.topic] = now
            self._loop.call_later(window, self._favorites_window_over, event.topic)
            return True
        self._favorites_pending[event.topic] = event
        return False

    def _favorites_window_over(self, topic: str) -> None:
        pending = self._favorites_pending.pop(topic, None)
        if pending is None:
            self._favorites_sent.pop(topic, None)
            return
        self._favorites_sent[topic] = time.monotonic()
        self._loop.call_later(self.settings.live_coalesce_seconds, self._favorites_window_over, topic)
        self._deliver(pending, [(connection, topic) for connection in self.articles.get(topic, ())])

    def _deliver(self, event: Event, targets: list[tuple[Connection, str]]) -> None:
        if not targets:
            return
        context = trace.get_current_span(_propagator.extract(dict(event.trace))).get_span_context()
        links = [Link(context)] if context.is_valid else []
        with tracer.start_as_current_span(
            "live.deliver",
            kind=trace.SpanKind.CONSUMER,
            links=links,
            attributes={
                "live.event.type": event.type,
                "live.event.id": event.id,
                "live.recipients": len(targets),
            },
        ):
            # Encoded once per topic, not once per socket: a fan-out to 1,000 sockets is one dumps.
            texts: dict[str, str] = {}
            for connection, topic in targets:
                text = texts.get(topic)
                if text is None:
                    text = texts[topic] = _encode(event.frame(topic))
                connection.offer(event, topic, text)

    # The reader and the housekeeping.
    async def _read(self) -> None:
        backoff = _BACKOFF_START
        while True:
            try:
                async for batch in self.broker.follow():
                    self._set_bus(up=True)
                    backoff = _BACKOFF_START
                    self.dispatch(batch)
            except LiveUnavailable as exc:
                if self.bus_up:
                    logger.warning("live bus lost", error=str(exc))
                self._set_bus(up=False)
                for connection in list(self.connections):
                    connection.finish(BUS_LOST)
            self._first_read.set()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    def _set_bus(self, *, up: bool) -> None:
        if up and not self.bus_up:
            logger.info("live bus connected")
        self.bus_up = up
        LIVE_BUS_UP.set(1 if up else 0)
        if up:
            self._first_read.set()

    async def _housekeeping(self) -> None:
        idle = self.settings.live_idle_seconds
        every = min(idle / 4, 5.0)
        refreshed = time.monotonic()
        while True:
            await asyncio.sleep(every)
            now = time.monotonic()
            for connection in list(self.connections):
                if connection.idle_since is not None and now - connection.idle_since >= idle:
                    connection.finish(IDLE)
            if now - refreshed >= limits.TTL_SECONDS / 3:
                refreshed = now
                with contextlib.suppress(LiveUnavailable):
                    await self.slots.refresh([(c.id, c.slot_keys) for c in self.connections if c.slot_keys])

    @staticmethod
    def closed(why: Close) -> None:
        LIVE_DISCONNECTS.labels(why.label).inc()


def _latest_favorites(events: list[Event]) -> list[Event]:
    """A replay's favourite counts: only the last of each article's, which holds the latest count."""
    last: dict[str, str] = {}
    for event in events:
        if event.type == ARTICLE_FAVORITES:
            last[event.topic] = event.id
    return [event for event in events if event.type != ARTICLE_FAVORITES or last[event.topic] == event.id]
