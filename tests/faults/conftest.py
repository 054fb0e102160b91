"""The app of the fault tests that take Redis away, or hold the event loop, while it serves: in
process, on a database of its own, with its cache in the test's Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from service.main import create_app
from tests.conftest import PostgresServer, test_settings
from tests.support.asgi import asgi_client
from tests.support.redis import RedisServer


@pytest.fixture
async def client(
    request: pytest.FixtureRequest, postgres: PostgresServer, redis: RedisServer
) -> AsyncIterator[httpx.AsyncClient]:
    url = postgres.create_database(f"inkwell_{request.module.__name__.rpartition('.')[2]}")
    app = create_app(test_settings(url, redis_url=redis.url))
    try:
        async with asgi_client(app) as client:
            yield client
    finally:
        await app.state.cache.close()
        await app.state.engine.dispose()
        postgres.drop_database(url)
