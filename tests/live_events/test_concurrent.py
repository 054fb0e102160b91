"""Concurrent writes with real commits (their own database and pool, tests/conftest.py's
`committing_client`): each favourite's event carries the count its own unit committed, and of two
identical favourites or follows racing, exactly one is told."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from service.live import events as live
from tests.factories import create_article, create_user
from tests.live_events.conftest import Recording, record_events

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
async def live_committing(committing_client: httpx.AsyncClient, published: Recording) -> httpx.AsyncClient:
    record_events(committing_client.app, published)  # type: ignore[attr-defined]
    return committing_client


async def test_concurrent_favourites_each_tell_the_count_they_committed(
    live_committing: httpx.AsyncClient, published: Recording
) -> None:
    client = live_committing
    author = await create_user(client)
    fans = [await create_user(client) for _ in range(12)]
    slug = (await create_article(client, author))["slug"]
    published.take()
    answers = await asyncio.gather(
        *(client.post(f"/api/articles/{slug}/favorite", headers=fan.headers) for fan in fans)
    )
    assert [answer.status_code for answer in answers] == [200] * 12
    counts = [
        event.data["article"]["favoritesCount"]
        for event in published.events
        if event.type == live.ARTICLE_FAVORITES
    ]
    # The article's row is locked from each favourite's count to its commit: every unit counted
    # one more than the one before it, and its event says so.
    assert sorted(counts) == list(range(1, 13))
    assert len([event for event in published.events if event.type == live.ARTICLE_FAVORITED]) == 12


async def test_the_same_favourite_and_follow_racing_are_told_once(
    live_committing: httpx.AsyncClient, published: Recording
) -> None:
    client = live_committing
    author = await create_user(client)
    fan = await create_user(client)
    slug = (await create_article(client, author))["slug"]
    published.take()
    answers = await asyncio.gather(
        *(client.post(f"/api/articles/{slug}/favorite", headers=fan.headers) for _ in range(4)),
        *(client.post(f"/api/profiles/{author.username}/follow", headers=fan.headers) for _ in range(4)),
    )
    assert [answer.status_code for answer in answers] == [200] * 8
    assert sorted(event.type for event in published.events) == sorted(
        [live.ARTICLE_FAVORITES, live.ARTICLE_FAVORITED, live.PROFILE_FOLLOWED, live.FOLLOWING_CHANGED]
    )
