"""On SQLite, the default database, the writes tell whether they changed anything as on PostgreSQL
(`INSERT ... ON CONFLICT DO NOTHING RETURNING`, `DELETE ... RETURNING`), so a repeated favourite or
follow publishes nothing there either, and real commits (not the suite's savepoints) publish."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from service.live import events as live
from service.main import create_app
from tests.conftest import test_settings
from tests.factories import create_article, create_user, favorite, follow
from tests.live_events.conftest import Recording, record_events
from tests.sqlite.test_embedded_default import migrate, sqlite_url
from tests.support.asgi import asgi_client

pytestmark = [pytest.mark.anyio, pytest.mark.sqlite]


@pytest.fixture
async def sqlite_client(tmp_path: Path, published: Recording) -> AsyncIterator[httpx.AsyncClient]:
    url = sqlite_url(tmp_path / "inkwell.db")
    await migrate(url)
    app = create_app(test_settings(url))
    record_events(app, published)
    try:
        async with asgi_client(app) as client:
            yield client
    finally:
        await app.state.engine.dispose()


async def test_repeated_favourites_and_follows_publish_once_on_sqlite(
    sqlite_client: httpx.AsyncClient, published: Recording
) -> None:
    author = await create_user(sqlite_client)
    fan = await create_user(sqlite_client)
    slug = (await create_article(sqlite_client, author))["slug"]
    published.take()
    for _ in range(2):
        await favorite(sqlite_client, fan, slug)
        await follow(sqlite_client, fan, author.username)
    assert [event.type for event in published.take()] == [
        live.ARTICLE_FAVORITES,
        live.ARTICLE_FAVORITED,
        live.PROFILE_FOLLOWED,
        live.FOLLOWING_CHANGED,
    ]
    for _ in range(2):
        response = await sqlite_client.delete(f"/api/profiles/{author.username}/follow", headers=fan.headers)
        assert response.status_code == 200, response.text
    assert [(event.type, event.data) for event in published.take()] == [
        (live.FOLLOWING_CHANGED, {"author": 1, "following": False})
    ]
