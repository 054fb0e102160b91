"""Case variants of one username registered at the same moment: exactly one account, every other
request 409 `username has already been taken` (the index on lower(username) decides, not the
check before the insert, which all of them pass)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import text

from service.db import create_engine
from tests.factories import PASSWORD

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROUNDS = 15


async def test_concurrent_case_variants_make_exactly_one_account(
    committing_client: httpx.AsyncClient,
) -> None:
    client = committing_client
    for round_ in range(ROUNDS):
        variants = [f"race{round_}x", f"RACE{round_}X", f"Race{round_}x", f"race{round_}X"]
        responses = await asyncio.gather(
            *(
                client.post(
                    "/api/users",
                    json={
                        "user": {"username": name, "email": f"{i}.{round_}@example.org", "password": PASSWORD}
                    },
                )
                for i, name in enumerate(variants)
            )
        )
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [201, 409, 409, 409], [r.text for r in responses]
        for response in responses:
            if response.status_code == 409:
                assert response.json() == {"errors": {"username": ["has already been taken"]}}

    engine = create_engine(client.app.state.settings, null_pool=True)  # type: ignore[attr-defined]
    try:
        async with engine.connect() as connection:
            counts = (
                await connection.execute(text("SELECT lower(username), count(*) FROM users GROUP BY 1"))
            ).all()
    finally:
        await engine.dispose()
    assert len(counts) == ROUNDS
    assert {count for _name, count in counts} == {1}
