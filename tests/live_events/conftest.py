"""The app of tests/api, with the live events' commit hook publishing to a `Recording` publisher.

`Recording` is a `service.live.events.Publisher` (our own interface, which the broker implements):
it keeps each batch a committed unit of work handed over, or refuses them as an unreachable bus
does, so a test sees exactly what the writes published and when.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.config import Settings
from service.live.commit import PublishOnCommit
from service.live.events import Event, LiveUnavailable
from service.main import create_app
from service.models import User
from tests.conftest import on_test_transaction
from tests.support.asgi import asgi_client


class Recording:
    """The batches published, in order; with `refuse`, each publish raises it instead (after noting
    that it was tried)."""

    def __init__(self) -> None:
        self.batches: list[list[Event]] = []
        self.attempts = 0
        self.refuse: Exception | None = None

    async def publish(self, events: Sequence[Event]) -> None:
        self.attempts += 1
        if self.refuse is not None:
            raise self.refuse
        self.batches.append(list(events))

    @property
    def events(self) -> list[Event]:
        return [event for batch in self.batches for event in batch]

    def seen(self) -> list[tuple[str, str]]:
        return [(event.topic, event.type) for event in self.events]

    def take(self) -> list[Event]:
        """The events so far, forgetting them: what the test's next write publishes starts afresh."""
        events = self.events
        self.batches.clear()
        return events


def record_events(app: Any, recording: Recording) -> None:
    """Sends the app's live events to `recording`: service.main's PublishOnCommit hands them to the
    hub's `publish` (registered after the cache's hook, so a client told of a change re-fetches a
    response already invalidated); with live updates off, a hook of the test's own in the same place."""
    hub = app.state.live
    if hub is None:
        app.state.database.on_commit(PublishOnCommit(recording))
    else:
        hub.publish = recording.publish


@pytest.fixture
def published() -> Recording:
    return Recording()


@pytest.fixture
def unavailable_bus() -> LiveUnavailable:
    return LiveUnavailable("redis: connection refused")


@pytest.fixture
def live_app(
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    published: Recording,
) -> Any:
    app = on_test_transaction(create_app(settings, engine=engine), sessionmaker)
    record_events(app, published)
    return app


@pytest.fixture
async def client(live_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(live_app) as client:
        yield client


async def user_id(db: AsyncSession, username: str) -> int:
    return int((await db.execute(select(User.id).where(User.username == username))).scalar_one())


def anonymous_article(article: dict[str, Any]) -> dict[str, Any]:
    """A REST article as an anonymous reader would get it: nothing of the viewer's in it."""
    return {**article, "favorited": False, "author": {**article["author"], "following": False}}


def anonymous_comment(comment: dict[str, Any]) -> dict[str, Any]:
    return {**comment, "author": {**comment["author"], "following": False}}
