"""Liveness and readiness probes for Kubernetes; not part of the Conduit API."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.responses import JSONResponse

router = APIRouter(tags=["Health"], include_in_schema=False)


@router.get("/livez")
async def livez() -> dict[str, str]:
    """The process serves requests; nothing else is checked, so a database outage never restarts pods."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers; otherwise 503 and the pod leaves the Service's endpoints."""
    try:
        async with request.app.state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return JSONResponse(
            {"status": "unavailable", "errors": {"database": [type(exc).__name__]}}, status_code=503
        )
    return JSONResponse({"status": "ok"})
