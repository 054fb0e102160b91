"""The load test's live listeners: WebSocket clients of /api/live on the popular articles, and the
ledger that checks every comment a writer posted reached every listener subscribed to its article.

Counting needs every process's records: a run's listeners and writers land on any workers (locust
deals a class's users out in turn), and all of them meet on the same popular articles (conduit.py
`World.popular`). So each process keeps its records (`Ledger`: the comments its writers posted, what
each of its listeners received) and, once its users have stopped, a worker sends them to the master,
which counts them all at once (`count`). Times are wall-clock (time.time) since they are compared
across machines: the load generators' clocks must agree within CLOCK_MARGIN_SECONDS (NTP does).

A comment is expected at a listener when its POST was sent after the listener's subscription was
acknowledged (`subscribed`), by more than the clock margin: it committed after that, so the protocol
owes it. One sent before (or within the margin) is left out either way. What an
expected comment became, counted when the listener stops (after the writers and a settle time):
delivered (its `comment.created` frame came), resynced (not delivered, but answered before a
`resync` of its topic, after which the listener re-fetched the comments over REST as docs/live.md
says: the contract kept, nothing lost) or lost.

Delivery lag, reported to locust as the response time of a "WS comment.created" request: from the
writer's POST sent (stamped in the comment's body, so a listener on any worker reads it from the
frame) to the frame received. The commit happened inside that window, so it is an upper bound of
commit to receive, never negative; it includes the write's own time, which the REST gates judge on
their own. The lower bound, from the POST's answer, measures nothing on a fast network: the service
publishes before it answers, so the frame usually arrives first (0 ms, measured on the staging stack).
The service's own histogram (inkwell_live_delivery_lag_seconds) has commit to frame sent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

# locust is imported where an event is fired, not here: importing it monkey-patches the process with
# gevent, and the tests of the counting (tests/loadtests/test_live_ledger.py) run in pytest's.

logger = logging.getLogger(__name__)

SUBPROTOCOL = "inkwell.live.v1"
# Load generators' clocks may differ by this much (NTP keeps them far closer): comments posted this
# close to a subscription are not judged either way.
CLOCK_MARGIN_SECONDS = 1.0
# Before reconnecting a closed socket: a draining pod closes new sockets too (1012) until the load
# balancer stops sending them there, and a tight loop of reconnects would be all the listener does.
# (Cooperative: gevent's monkey-patching makes time.sleep yield.)
RECONNECT_PAUSE_SECONDS = 0.2
# ... doubled, with jitter, for each close in a row that no frame came between (a socket refused over
# the per-IP limit, 4429, or a pod that keeps refusing), up to this; the first frame resets it.
RECONNECT_PAUSE_MAX_SECONDS = 10.0
REQUEST_TYPE = "WS"  # locust's "method" column: the groups are "WS comment.created", "WS connect"

# What a delivery is reported with: (name, response time in ms, length, exception or None).
Report = Callable[[str, float, int, "Exception | None"], None]


def to_locust(name: str, response_time: float, length: int, exception: Exception | None) -> None:
    """A request-like event in locust's stats (and so its CSV and HTML report) as "WS <name>"."""
    from locust import events

    events.request.fire(  # type: ignore[no-untyped-call] # locust's events are untyped
        request_type=REQUEST_TYPE,
        name=name,
        response_time=response_time,
        response_length=length,
        exception=exception,
        context={},
    )


def live_url(host: str) -> str:
    """ws:// or wss:// for the http(s) host locust is pointed at, path /api/live."""
    base = host.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + "/api/live"
    return "ws://" + base.removeprefix("http://") + "/api/live"


@dataclass
class LiveTally:
    """What the listeners of one process (or, summed, of a whole run) counted."""

    listeners: int = 0
    expected: int = 0
    delivered: int = 0
    resynced: int = 0
    lost: int = 0
    duplicates: int = 0  # a comment's frame sent twice to one socket (the protocol sends each once)
    reconnects: int = 0
    resyncs: int = 0
    # Frames of comments this process did not post (another worker's writers on a shared article).
    foreign: int = 0
    lost_by_article: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Posted:
    comment: int
    slug: str
    sent_at: float
    answered_at: float


@dataclass
class Subscription:
    """One listener's view of one article: since when it listens, what came, when it resynced."""

    since: float
    received: set[int] = field(default_factory=set)
    resynced_at: list[float] = field(default_factory=list)


STAMP = " sent:"


def stamped(words: str, at: float) -> str:
    """A comment's body carrying the time its POST was sent, so any listener, on any worker, can
    measure the delivery lag from it without asking the writer's process."""
    return f"{words}{STAMP}{at:.6f}"


def sent_at(body: str) -> float | None:
    _, found, stamp = body.rpartition(STAMP)
    try:
        return float(stamp) if found else None
    except ValueError:
        return None


def count(
    posts: list[Posted], listeners: list[dict[str, Subscription]], *, margin: float = CLOCK_MARGIN_SECONDS
) -> LiveTally:
    """What every listener was owed of the comments posted (by any process) and what became of it.

    Owed: a comment on an article the listener subscribed to, whose POST was sent `margin` seconds
    or more after the subscription was acknowledged (clocks of different machines may differ by
    that much; a comment inside the margin is left out either way). Resynced: not delivered, but
    answered before a resync of that topic (plus the margin), which the listener re-fetched."""
    by_article: dict[str, list[Posted]] = {}
    for post in posts:
        by_article.setdefault(post.slug, []).append(post)
    known = {post.comment for post in posts}
    tally = LiveTally(listeners=len(listeners))
    for subscriptions in listeners:
        for slug, subscription in subscriptions.items():
            tally.foreign += len(subscription.received - known)
            for post in by_article.get(slug, ()):
                if post.sent_at < subscription.since + margin:
                    continue
                tally.expected += 1
                if post.comment in subscription.received:
                    tally.delivered += 1
                elif any(post.answered_at <= at + margin for at in subscription.resynced_at):
                    tally.resynced += 1
                else:
                    tally.lost += 1
                    tally.lost_by_article[slug] = tally.lost_by_article.get(slug, 0) + 1
    return tally


class Ledger:
    """This process's records: the comments its writers posted, and what each of its listeners got.
    They are counted together with every other process's (`count`) where the run is judged."""

    def __init__(self, report: Report = to_locust) -> None:
        self.report = report
        self.posts: list[Posted] = []
        self.listeners: list[dict[str, Subscription]] = []
        self.in_flight = 0
        self.last_answer = 0.0
        self.duplicates = 0
        self.reconnects = 0
        self.resyncs = 0

    def reset(self) -> None:
        """A new run (the web UI starts one after another in one process): nothing of the last."""
        self.posts, self.listeners = [], []
        self.duplicates = self.reconnects = self.resyncs = 0

    # -- writers --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def posting(self) -> Iterator[None]:
        """Around a comment's POST: the listeners' settle waits while one is in flight."""
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self.last_answer = time.monotonic()

    def record(self, slug: str, comment: int, sent: float, answered: float) -> None:
        self.posts.append(Posted(comment, slug, sent, answered))

    # -- listeners ------------------------------------------------------------------------------

    def delivered(self, body: str, received_at: float, length: int) -> None:
        """Reports a comment's delivery to locust, its lag from the stamp in its body (a comment
        posted by something other than the load test has none, and no lag)."""
        sent = sent_at(body)
        if sent is not None:
            self.report("comment.created", max(0.0, (received_at - sent) * 1000), length, None)

    def quiet_for(self) -> float:
        """Seconds since the last comment POST was answered; 0 while one is in flight."""
        if self.in_flight:
            return 0.0
        return time.monotonic() - self.last_answer if self.last_answer else float("inf")

    def close(self, subscriptions: dict[str, Subscription], *, reconnects: int, resyncs: int) -> None:
        self.listeners.append(subscriptions)
        self.reconnects += reconnects
        self.resyncs += resyncs

    # -- where the run is judged ----------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "posts": [asdict(post) for post in self.posts],
            "listeners": [
                {
                    slug: {
                        "since": sub.since,
                        "received": sorted(sub.received),
                        "resynced_at": sub.resynced_at,
                    }
                    for slug, sub in subscriptions.items()
                }
                for subscriptions in self.listeners
            ],
            "duplicates": self.duplicates,
            "reconnects": self.reconnects,
            "resyncs": self.resyncs,
        }

    def merge(self, data: dict[str, Any]) -> None:
        """Another process's records (a worker's, on the master)."""
        self.posts.extend(Posted(**post) for post in data["posts"])
        for subscriptions in data["listeners"]:
            self.listeners.append(
                {
                    slug: Subscription(sub["since"], set(sub["received"]), list(sub["resynced_at"]))
                    for slug, sub in subscriptions.items()
                }
            )
        self.duplicates += data["duplicates"]
        self.reconnects += data["reconnects"]
        self.resyncs += data["resyncs"]

    def tally(self) -> LiveTally:
        tally = count(self.posts, self.listeners)
        tally.duplicates, tally.reconnects, tally.resyncs = self.duplicates, self.reconnects, self.resyncs
        if tally.lost:
            logger.error(
                "listeners lost %d of %d comments: %s", tally.lost, tally.expected, tally.lost_by_article
            )
        return tally


LEDGER = Ledger()


class Listener:
    """One WebSocket to /api/live, subscribed to `topics` (article slugs), reconnecting with `since`.

    Frames are read by the locust user's own greenlet (`listen`); the socket is websocket-client's,
    whose plain blocking socket calls gevent's monkey-patching makes cooperative."""

    def __init__(self, host: str, slugs: list[str], *, timeout: float = 10.0) -> None:
        self.url = live_url(host)
        self.slugs = slugs
        self.timeout = timeout
        self.socket: Any = None
        self.last_id: str | None = None
        self.subscriptions: dict[str, Subscription] = {}
        self.reconnects = 0
        self.resyncs = 0
        self.refetch: list[str] = []  # topics a resync asked the user to re-fetch over REST
        self.pause = RECONNECT_PAUSE_SECONDS

    def connect(self) -> bool:
        """Opens the socket and subscribes (with `since` after a first event); reported as
        "WS connect" with the handshake's time, a failure as a failed one. False: try again later."""
        import websocket

        started = time.perf_counter()
        reconnecting = self.socket is not None or bool(self.subscriptions)
        self.drop()
        try:
            # No Origin: a client that is not a browser sends none (docs/live.md, Host and Origin).
            self.socket = websocket.create_connection(
                self.url, subprotocols=[SUBPROTOCOL], timeout=self.timeout, suppress_origin=True
            )
            message: dict[str, Any] = {"type": "subscribe", "topics": [f"article:{s}" for s in self.slugs]}
            if self.last_id is not None:
                message["since"] = self.last_id
            self.socket.send(json.dumps(message))
        except (OSError, websocket.WebSocketException) as error:
            self.drop()
            self._connect_event(started, error)
            return False
        self._connect_event(started, None)
        if reconnecting:
            self.reconnects += 1
            if self.last_id is None:
                # Nothing to resume from: whatever was published meanwhile is re-fetched over REST.
                self._resync([f"article:{s}" for s in self.slugs])
        return True

    def _connect_event(self, started: float, error: Exception | None) -> None:
        LEDGER.report("connect", (time.perf_counter() - started) * 1000, 0, error)

    def drop(self) -> None:
        if self.socket is not None:
            with contextlib.suppress(Exception):
                self.socket.close()
            self.socket = None

    def listen(self, seconds: float) -> bool:
        """Reads frames for about `seconds`; a closed socket is reconnected. False: it could not
        connect (counted as a failed "WS connect")."""
        import websocket

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.socket is None and not self.connect():
                return False
            self.socket.settimeout(max(0.1, min(1.0, deadline - time.monotonic())))
            try:
                frame = self.socket.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except (OSError, websocket.WebSocketException) as error:
                logger.info("live socket closed (%s): reconnecting", error)
                self.back_off()
                continue
            if not frame:  # a close frame: the server asked us to reconnect (1012, 1013, 4409)
                logger.info("live socket closed by the server: reconnecting")
                self.back_off()
                continue
            self.pause = RECONNECT_PAUSE_SECONDS
            self.handle(frame, time.time())
        return True

    def back_off(self) -> None:
        """Drops the socket and waits before the next connect, longer after each close in a row."""
        self.drop()
        time.sleep(self.pause * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not a secret
        self.pause = min(self.pause * 2, RECONNECT_PAUSE_MAX_SECONDS)

    def handle(self, frame: str | bytes, received_at: float) -> None:
        message = json.loads(frame)
        kind = message.get("type")
        if "id" in message and "topic" in message:
            self.last_id = message["id"]
            slug = message["topic"].removeprefix("article:")
            if kind == "comment.created" and slug in self.subscriptions:
                comment = int(message["comment"]["id"])
                subscription = self.subscriptions[slug]
                if comment in subscription.received:
                    LEDGER.duplicates += 1
                    return
                subscription.received.add(comment)
                LEDGER.delivered(str(message["comment"]["body"]), received_at, len(frame))
        elif kind == "subscribed":
            for topic in message["topics"]:
                slug = topic.removeprefix("article:")
                # A resubscription (reconnecting with since) continues the first one's window.
                self.subscriptions.setdefault(slug, Subscription(since=received_at))
        elif kind == "resync":
            self._resync(message["topics"])
        elif kind == "error":
            LEDGER.report("error", 0, len(frame), RuntimeError(json.dumps(message["errors"])))

    def _resync(self, topics: list[str]) -> None:
        self.resyncs += 1
        now = time.time()
        for topic in topics:
            slug = topic.removeprefix("article:")
            if slug in self.subscriptions:
                self.subscriptions[slug].resynced_at.append(now)
                self.refetch.append(slug)

    def close(self) -> None:
        self.drop()
        LEDGER.close(self.subscriptions, reconnects=self.reconnects, resyncs=self.resyncs)
