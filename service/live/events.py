"""What a live event is: the one shape shared by the writes that emit events (through the unit of
work, published once it commits) and the hub that delivers them to WebSocket clients on every replica.

An event travels on a bus topic, which says who may receive it:

- `article:<slug>`: anyone subscribed to the article (its comments, edits, deletion, favourite count);
- `user:<id>`: that user's own `me` subscription (someone followed them, favourited or commented on
  their article), and the hub's own bookkeeping for the user (`INTERNAL_TYPES`);
- `author:<id>`: the `me` subscriptions of the author's followers (the author published).

Clients see `article:<slug>` topics as they are and the other two as `me`. `data` holds the objects in
the Conduit wire format under their names (`{"comment": {...}}`), as an anonymous reader sees them:
one event goes to many readers, so nothing in it is personal (`following` is false, `favorited` too).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

ARTICLE = "article:"
USER = "user:"
AUTHOR = "author:"
ME = "me"

# Types a client receives.
COMMENT_CREATED = "comment.created"
COMMENT_DELETED = "comment.deleted"
ARTICLE_UPDATED = "article.updated"
ARTICLE_DELETED = "article.deleted"
ARTICLE_FAVORITES = "article.favorites"  # {"article": {"slug", "favoritesCount"}}, coalesced
ARTICLE_PUBLISHED = "article.published"  # on `me`, from an author the user follows
ARTICLE_FAVORITED = "article.favorited"  # on `me`: someone favourited my article
ARTICLE_COMMENTED = "article.commented"  # on `me`: someone commented on my article
PROFILE_FOLLOWED = "profile.followed"  # on `me`: someone followed me

# Types only the hub reads, never sent to a client.
FOLLOWING_CHANGED = "following.changed"  # {"author": <id>, "following": bool}, on user:<follower>
USER_DEACTIVATED = "user.deactivated"  # {}, on user:<id>: their sockets are closed
INTERNAL_TYPES = frozenset({FOLLOWING_CHANGED, USER_DEACTIVATED})
CLIENT_TYPES = (
    COMMENT_CREATED, COMMENT_DELETED, ARTICLE_UPDATED, ARTICLE_DELETED, ARTICLE_FAVORITES,
    ARTICLE_PUBLISHED, ARTICLE_FAVORITED, ARTICLE_COMMENTED, PROFILE_FOLLOWED,
)  # fmt: skip


def article_topic(slug: str) -> str:
    return f"{ARTICLE}{slug}"


def user_topic(user_id: int) -> str:
    return f"{USER}{user_id}"


def author_topic(user_id: int) -> str:
    return f"{AUTHOR}{user_id}"


@dataclass(frozen=True, slots=True)
class Event:
    topic: str
    type: str
    data: Mapping[str, Any]
    # The W3C trace context (traceparent, tracestate) of the request that wrote it, so a delivery's
    # span links to the write that caused it.
    trace: Mapping[str, str] = field(default_factory=dict)
    # Wall-clock time (time.time()) when its write committed: the start of the delivery lag.
    committed_at: float = 0.0
    # Assigned by the broker when published; increases along the bus, so a client may resume after it.
    id: str = ""

    @property
    def internal(self) -> bool:
        return self.type in INTERNAL_TYPES

    def encode(self) -> bytes:
        """The event as the bus carries it (its id is the bus's, not part of the payload)."""
        return json.dumps(
            {
                "topic": self.topic,
                "type": self.type,
                "data": self.data,
                "trace": self.trace,
                "committed_at": self.committed_at,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, raw: bytes | str, *, event_id: str) -> Event:
        body = json.loads(raw)
        return cls(
            topic=body["topic"],
            type=body["type"],
            data=body["data"],
            trace=body.get("trace") or {},
            committed_at=float(body.get("committed_at") or 0.0),
            id=event_id,
        )

    def with_id(self, event_id: str) -> Event:
        return replace(self, id=event_id)

    def frame(self, topic: str) -> dict[str, Any]:
        """The JSON text frame a client receives, with the topic it subscribed to (`me` for its own)."""
        return {"id": self.id, "topic": topic, "type": self.type, **self.data}


class Publisher(Protocol):
    """Where committed units of work hand their events (service.live.broker's brokers): all of a unit's
    events at once, in the order they were emitted. Raises `LiveUnavailable` when the bus cannot take
    them; the write has committed by then, so the caller logs and counts it and answers as usual."""

    async def publish(self, events: Sequence[Event]) -> None: ...


class LiveUnavailable(Exception):
    """The bus (Redis) cannot be reached: live updates stop until it is back; REST goes on."""
