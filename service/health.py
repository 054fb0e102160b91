"""Liveness and readiness probes for Kubernetes; not part of the Conduit API."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import lru_cache

from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.responses import JSONResponse

router = APIRouter(tags=["Health"], include_in_schema=False)

_draining = threading.Event()


_on_drain: list[Callable[[], None]] = []


def start_draining() -> None:
    """Called on SIGTERM: from now on this process reports not ready, and what watches it is told
    (from the signal handler: a callback must only hand the work to its loop, thread-safely)."""
    _draining.set()
    for callback in list(_on_drain):
        callback()


def on_drain(callback: Callable[[], None]) -> Callable[[], None]:
    """Calls `callback` when the process starts draining; returns what stops it being called."""
    _on_drain.append(callback)
    return lambda: _on_drain.remove(callback) if callback in _on_drain else None


def is_draining() -> bool:
    return _draining.is_set()


@lru_cache(maxsize=1)
def _head_revision() -> str | None:
    # Imported on the first readiness check, not at start: Alembic is a third of a second of a
    # worker's import on an idle machine, and a worker starts serving sooner without it.
    from alembic.script import ScriptDirectory

    from service.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process serves requests; nothing else is checked, so a database outage never restarts pods."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when not shutting down and the database answers at the schema this code expects."""
    errors: dict[str, list[str]] = {}
    if is_draining():
        errors["process"] = ["shutting down"]
    try:
        async with request.app.state.engine.connect() as connection:
            current = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        if current != _head_revision():
            errors["migrations"] = [
                f"database at {current}, code expects {_head_revision()}; run inkwell migrate"
            ]
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        errors["database"] = [f"unreachable ({type(exc).__name__})"]
    if errors:
        return JSONResponse({"status": "unavailable", "errors": errors}, status_code=503)
    return JSONResponse({"status": "ok"})
