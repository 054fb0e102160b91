"""The after-commit point where a unit of work's live events leave for the bus.

Events are emitted into the unit of work by the domain services as they write (`UnitOfWork.emit`),
never by an endpoint, and only this hook hands them on: once, all of a unit's events in the order
they were emitted, after the commit made them true. A unit that rolls back never reaches it, so its
events (and those of a savepoint that rolled back, which the unit drops itself) are never seen.

The write has committed by then and the client is about to be told so: a bus that cannot take the
events (`LiveUnavailable`) or any other failure is logged, with how many events and of which types,
and never reaches the writer. Live clients miss those events; they resync over REST when they
reconnect (docs/live-events.md). The hook adds no wait of its own: the broker bounds its publish
(`service.deadlines.responsive_timeout`), and that bound is the most a write's response waits.

Register it after `service.cache.InvalidateOnCommit`: hooks run in that order after the commit, and
a client told of a change re-fetches at once, which must not find the cache still serving the
response a read cached while the write committed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import structlog

from service.db import UnitOfWork
from service.live.events import Event, LiveUnavailable, Publisher

logger = structlog.get_logger("inkwell.live")


class PublishOnCommit:
    """The commit hook that publishes a committed unit's events through `publisher`."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    async def before_commit(self, uow: UnitOfWork) -> None:
        # Nothing to refuse: live events are best effort, and a write never waits for the bus.
        return None

    async def after_commit(self, uow: UnitOfWork) -> None:
        if not uow.events:
            return
        # Taken off the unit first: even were the hook run twice, the events leave once.
        emitted, uow.events = uow.events, []
        committed_at = time.time()
        events = [replace(event, committed_at=committed_at) for event in emitted]
        try:
            await self.publisher.publish(events)
        except LiveUnavailable:
            logger.warning("live events not published: the bus is unavailable", **_described(events))
        except Exception:
            logger.exception("live events not published", **_described(events))


def _described(events: Sequence[Event]) -> dict[str, object]:
    types = Counter(event.type for event in events)
    return {"count": len(events), "types": dict(sorted(types.items()))}
