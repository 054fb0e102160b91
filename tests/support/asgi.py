"""The in-process HTTP client every API test talks to the app through."""

from __future__ import annotations

from typing import Any

import httpx


def asgi_client(app: Any, **transport_options: Any) -> httpx.AsyncClient:
    """An httpx client calling `app` directly (no server, no socket), at http://testserver."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, **transport_options), base_url="http://testserver"
    )
