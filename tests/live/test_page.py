"""The protocol page the app serves (OpenAPI cannot describe a WebSocket), linked from the API's
description, and `INKWELL_LIVE_ENABLED=false` taking the route away."""

from __future__ import annotations

import pytest

from service.live import hub
from service.main import create_app
from tests.conftest import test_settings
from tests.support.asgi import asgi_client

pytestmark = pytest.mark.anyio

NO_DATABASE = "sqlite+aiosqlite:///:memory:"  # neither page nor schema reads it


async def test_the_page_documents_every_close_code_and_the_api_description_links_it() -> None:
    app = create_app(test_settings(NO_DATABASE))
    async with asgi_client(app) as client:
        page = await client.get("/docs/live")
        description = (await client.get("/openapi.json")).json()["info"]["description"]
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for close in (hub.DRAIN, hub.BUS_LOST, hub.PROTOCOL, hub.EXPIRED, hub.DEACTIVATED, hub.IDLE,
                  hub.SLOW_CONSUMER, hub.TOO_MANY):  # fmt: skip
        assert f"<td>{close.code}</td>" in page.text
    assert "token.&lt;jwt&gt;" in page.text
    assert "(/docs/live)" in description


def test_live_updates_can_be_turned_off() -> None:
    def paths(**overrides: object) -> set[str]:
        app = create_app(test_settings(NO_DATABASE, **overrides))
        return {getattr(route, "path", "") for route in app.routes}

    assert {"/api/live", "/docs/live"} <= paths()
    assert not {"/api/live", "/docs/live"} & paths(live_enabled=False)
    assert create_app(test_settings(NO_DATABASE, live_enabled=False)).state.live is None
