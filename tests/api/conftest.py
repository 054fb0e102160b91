"""`make_client`: a client on an app built with settings of the test's own, in the test's transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.main import create_app
from tests.conftest import on_test_transaction
from tests.conftest import test_settings as make_settings
from tests.support.asgi import asgi_client

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def make_client(
    database_url: str, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> ClientFactory:
    """A client on the app built with the given settings, sharing the test's transaction."""

    @asynccontextmanager
    async def build(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(make_settings(database_url, **overrides), engine=engine)
        on_test_transaction(app, sessionmaker)
        async with asgi_client(app) as client:
            yield client

    return build
