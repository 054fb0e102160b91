"""Migration 0003 on databases that already hold case variants of one username: the oldest
account keeps the name, the later ones are renamed `<name>-<id>` (past a name that is taken too),
and from then on the database refuses a case variant itself; down and up again, on both
databases."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from sqlalchemy.exc import IntegrityError

from service.migrate import downgrade, upgrade
from tests.api.test_migrations import run, schema_drift
from tests.conftest import PostgresServer

pytestmark = pytest.mark.anyio

USERS = [(1, "dupX"), (2, "DUPX"), (3, "dupx"), (4, "DUPX-2"), (5, "other")]
AFTER = [(1, "dupX"), (2, "DUPX-2-2"), (3, "dupx-3"), (4, "DUPX-2"), (5, "other")]


def _insert(user_id: int, name: str) -> str:
    return (
        f"INSERT INTO users (id, username, email, password_hash, role)"
        f" VALUES ({user_id}, '{name}', 'u{user_id}@x.test', 'x', 'editor')"
    )


async def _check(url: str) -> None:
    await anyio.to_thread.run_sync(downgrade, url, "0002")
    await run(url, *(_insert(user_id, name) for user_id, name in USERS))

    await anyio.to_thread.run_sync(upgrade, url)

    [names] = await run(url, "SELECT id, username FROM users ORDER BY id")
    assert names == AFTER
    assert await schema_drift(url) == []
    with pytest.raises(IntegrityError, match="uq_users_username_lower"):
        await run(url, _insert(7, "OTHER"))

    await anyio.to_thread.run_sync(downgrade, url, "0002")
    await run(url, _insert(7, "OTHER"))
    await anyio.to_thread.run_sync(upgrade, url)
    [[(renamed,)]] = await run(url, "SELECT username FROM users WHERE id = 7")
    assert renamed == "OTHER-7"


async def test_postgresql_upgrade_renames_the_later_case_variants(postgres: PostgresServer) -> None:
    url = postgres.create_database("inkwell_migrations")
    try:
        await _check(url)
        [[(valid,)]] = await run(
            url,
            "SELECT i.indisvalid FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid"
            " WHERE c.relname = 'uq_users_username_lower'",
        )
        assert valid is True
    finally:
        postgres.drop_database(url)


async def test_sqlite_upgrade_renames_the_later_case_variants(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'variants.db'}"
    await anyio.to_thread.run_sync(upgrade, url)
    await _check(url)
