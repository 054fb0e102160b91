"""Migration 0002 on a database that already holds data, on both databases: the kept counts and
copies come out exact, the indexes valid, and it goes back down and up again. And the models
describe exactly the schema the migrations build, so neither can drift from the other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import argon2
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bench import scale_data
from service.migrate import downgrade, upgrade
from service.models import Base
from tests.conftest import PostgresServer

pytestmark = pytest.mark.anyio

SIZE = scale_data.Size("2k", 2_000)
NEW_INDEXES = {
    "ix_article_tags_tag_id_listed",
    "ix_favorites_user_id_listed",
    "ix_articles_author_id_created_at_id",
    "ix_comments_article_id_created_at_id",
    "ix_tags_articles_count_name",
    "ix_tags_last_used_at",
}


async def run(url: str, *statements: str) -> list[Any]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            results = []
            for statement in statements:
                result = await connection.execute(text(statement))
                results.append(result.all() if result.returns_rows else None)
            return results
    finally:
        await engine.dispose()


async def schema_drift(url: str) -> list[Any]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
    finally:
        await engine.dispose()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> Any:
    url = postgres.create_database("inkwell_migrations")
    yield url
    postgres.drop_database(url)


async def test_postgresql_upgrade_counts_a_populated_database_exactly(postgres_url: str) -> None:
    await anyio.to_thread.run_sync(downgrade, postgres_url, "0001")
    password_hash = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("x")
    await run(postgres_url, *_statements(scale_data.fill_sql(SIZE, password_hash, kept_counts=False)))

    await anyio.to_thread.run_sync(upgrade, postgres_url)

    [wrong, counts, indexes, nulls] = await run(
        postgres_url,
        scale_data.check_sql(),
        "SELECT (SELECT value FROM counters WHERE name = 'articles'),"
        " (SELECT articles_count FROM tags WHERE name = 'popular'),"
        " (SELECT favorites_count FROM users WHERE username = 'fan')",
        "SELECT c.relname, i.indisvalid FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid"
        " WHERE c.relname LIKE 'ix_%'",
        "SELECT count(*) FROM article_tags WHERE article_created_at IS NULL",
    )
    assert wrong == []
    assert counts == [(SIZE.articles, SIZE.articles // 10, SIZE.articles // 100)]
    valid = {name for name, is_valid in indexes if is_valid}
    assert valid >= NEW_INDEXES
    assert not {"ix_article_tags_tag_id", "ix_articles_author_id_created_at"} & {name for name, _ in indexes}
    assert nulls == [(0,)]
    assert await schema_drift(postgres_url) == []

    await anyio.to_thread.run_sync(downgrade, postgres_url, "0001")
    await anyio.to_thread.run_sync(upgrade, postgres_url)
    assert (await run(postgres_url, scale_data.check_sql()))[0] == []


async def test_postgresql_rows_written_without_the_copy_get_it_from_the_trigger(postgres_url: str) -> None:
    # What a pod of the previous version writes during a rolling upgrade: no article_created_at.
    *_, [(created,)], [(copied_to_tag,)], [(copied_to_favorite,)] = await run(
        postgres_url,
        "INSERT INTO users (id, username, email, password_hash, role) VALUES (1, 'old', 'old@x.test', 'x', 'editor')",
        "INSERT INTO articles (id, slug, title, description, body, author_id) VALUES (1, 's', 't', 'd', 'b', 1)",
        "INSERT INTO tags (id, name) VALUES (1, 't')",
        "INSERT INTO article_tags (article_id, tag_id, position) VALUES (1, 1, 0)",
        "INSERT INTO favorites (user_id, article_id) VALUES (1, 1)",
        "UPDATE articles SET favorites_count = favorites_count + 1 WHERE id = 1",
        "SELECT created_at FROM articles",
        "SELECT article_created_at FROM article_tags",
        "SELECT article_created_at FROM favorites",
    )
    assert copied_to_tag == copied_to_favorite == created
    assert (await run(postgres_url, scale_data.check_sql()))[0] == []


async def test_sqlite_upgrade_counts_a_populated_database_exactly(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'populated.db'}"
    await anyio.to_thread.run_sync(upgrade, url, "0001")
    await run(
        url,
        "INSERT INTO users (id, username, email, password_hash, role) VALUES"
        " (1, 'a', 'a@x.test', 'x', 'editor'), (2, 'b', 'b@x.test', 'x', 'editor')",
        "INSERT INTO articles (id, slug, title, description, body, author_id, favorites_count) VALUES"
        " (1, 'one', 't', 'd', 'b', 1, 1), (2, 'two', 't', 'd', 'b', 1, 0), (3, 'three', 't', 'd', 'b', 2, 1)",
        "INSERT INTO tags (id, name) VALUES (1, 'x'), (2, 'y'), (3, 'unused')",
        "INSERT INTO article_tags (article_id, tag_id, position) VALUES (1, 1, 0), (1, 2, 1), (2, 2, 0), (3, 2, 0)",
        "INSERT INTO favorites (user_id, article_id) VALUES (2, 1), (1, 3)",
    )

    await anyio.to_thread.run_sync(upgrade, url)

    [wrong, tags, users] = await run(
        url,
        scale_data.check_sql(),
        "SELECT name, articles_count FROM tags ORDER BY id",
        "SELECT username, articles_count, favorites_count FROM users ORDER BY id",
    )
    assert wrong == []
    assert tags == [("x", 1), ("y", 3), ("unused", 0)]
    assert users == [("a", 2, 1), ("b", 1, 1)]
    assert await schema_drift(url) == []

    await anyio.to_thread.run_sync(downgrade, url, "0001")
    await anyio.to_thread.run_sync(upgrade, url)
    assert (await run(url, scale_data.check_sql()))[0] == []


def _statements(script: str) -> list[str]:
    """The fill script's statements one by one (the driver takes one at a time)."""
    return [statement.strip() for statement in script.split(";\n") if statement.strip()]
