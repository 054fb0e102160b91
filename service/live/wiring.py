"""How `create_app` builds live updates: the bus and the connection limits in Redis when
`INKWELL_REDIS_URL` is set (every process and pod shares them), in the process otherwise; the hub;
the `/api/live` route and its documentation page."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import HTMLResponse

from service import health
from service.config import Settings
from service.db import Database
from service.live import limits, page
from service.live.broker import Broker, LocalBroker, RedisBroker
from service.live.directory import Directory
from service.live.endpoint import PATH, live
from service.live.hub import Hub


def create_hub(settings: Settings, database: Database) -> Hub:
    broker: Broker
    slots: limits.Slots
    if settings.redis_url:
        broker = RedisBroker(settings.redis_url, retain=settings.live_replay_events)
        slots = limits.RedisSlots(settings.redis_url)
    else:
        broker = LocalBroker(retain=settings.live_replay_events)
        slots = limits.LocalSlots()
    return Hub(settings, broker=broker, slots=slots, directory=Directory(database, settings))


async def start(hub: Hub) -> None:
    await hub.start()
    # SIGTERM (service.serving) closes the sockets with 1012 at once, whatever drain_seconds is.
    hub.stop_watching_drain = health.on_drain(hub.drain_soon)


async def stop(hub: Hub) -> None:
    hub.stop_watching_drain()
    await hub.stop()


def install(app: FastAPI, settings: Settings) -> None:
    app.add_api_websocket_route(PATH, live, name="live")
    if settings.docs_enabled:
        body = page.body()

        async def live_page() -> HTMLResponse:
            return HTMLResponse(body)

        app.add_api_route(page.PAGE, live_page, methods=["GET"], include_in_schema=False, name="live-docs")
