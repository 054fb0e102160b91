"""The embedded database keeps an active admin too when two admins demote each other at once:
there every write transaction runs alone (BEGIN IMMEDIATE), so the second sees the first's change.
SQLite was not affected by the race PostgreSQL had; this holds it so, should writes ever stop
taking the write lock at BEGIN (the lock of admin.service is left out on SQLite)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.factories import create_user
from tests.sqlite.test_embedded_default import sqlite_app, sqlite_client

pytestmark = [pytest.mark.anyio, pytest.mark.sqlite]

__all__ = ["sqlite_app", "sqlite_client"]  # the fixtures, used by name


async def test_two_admins_demoting_each_other_at_once_leave_an_admin_on_sqlite(
    sqlite_client: httpx.AsyncClient, sqlite_app: FastAPI
) -> None:
    client = sqlite_client
    for round_ in range(8):
        one, two = await create_user(client), await create_user(client)
        async with sqlite_app.state.engine.begin() as connection:
            await connection.execute(text("UPDATE users SET role = 'editor' WHERE role = 'admin'"))
            await connection.execute(
                text("UPDATE users SET role = 'admin' WHERE username IN (:a, :b)"),
                {"a": one.username, "b": two.username},
            )
        change = [{"role": "viewer"}, {"active": False}][round_ % 2]
        responses = await asyncio.gather(
            client.patch(f"/api/admin/users/{two.username}", json={"user": change}, headers=one.headers),
            client.patch(f"/api/admin/users/{one.username}", json={"user": change}, headers=two.headers),
        )
        assert sorted(r.status_code for r in responses)[0] == 200
        assert sorted(r.status_code for r in responses)[1] in {401, 403, 409}
        async with sqlite_app.state.engine.connect() as connection:
            admins = await connection.execute(
                text("SELECT count(*) FROM users WHERE role = 'admin' AND is_active")
            )
            assert admins.scalar_one() == 1
