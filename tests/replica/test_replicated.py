"""The fixtures: a replicated database is migrated on the replica as on the primary when the test
gets it, its replica URL reads what the primary URL commits once the replica has caught up, and a
test that pauses replay or stops the replica leaves the next one a replica that replays."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.postgres import PostgresCluster
from tests.support.replica import ReplicatedDatabase, StreamingReplica

pytestmark = pytest.mark.anyio


async def test_a_replicated_database_is_migrated_on_the_replica_and_reads_what_the_primary_commits(
    replicated: ReplicatedDatabase, replica: StreamingReplica, primary: PostgresCluster
) -> None:
    version = "SELECT version_num FROM alembic_version"
    assert replica.psql(version, replicated.name) == primary.psql(version, replicated.name) != ""

    writer = create_async_engine(replicated.primary_url)
    reader = create_async_engine(replicated.replica_url)
    try:
        async with writer.begin() as connection:
            await connection.execute(text("INSERT INTO tags (name) VALUES ('replicated')"))
        replica.wait_caught_up()
        async with reader.connect() as connection:
            names = (await connection.execute(text("SELECT name FROM tags"))).scalars().all()
            assert names == ["replicated"]
            with pytest.raises(DBAPIError, match="read-only transaction"):
                await connection.execute(text("INSERT INTO tags (name) VALUES ('here')"))
    finally:
        await writer.dispose()
        await reader.dispose()


def test_a_test_may_leave_replay_paused(
    replicated: ReplicatedDatabase, replica: StreamingReplica, primary: PostgresCluster
) -> None:
    replica.pause_replay()
    primary.psql("INSERT INTO tags (name) VALUES ('held back')", replicated.name)


# This test and the next rely on running in this order, after the one above.
def test_the_next_test_finds_replay_resumed_and_may_leave_the_replica_stopped(
    replicated: ReplicatedDatabase, replica: StreamingReplica
) -> None:
    assert replica.psql("SELECT pg_is_wal_replay_paused()").strip() == "f"
    replica.wait_caught_up(timeout=10)
    replica.stop()


def test_the_next_test_finds_the_replica_running_again_on_its_port(
    replicated: ReplicatedDatabase, replica: StreamingReplica
) -> None:
    assert replica.running()
    assert replica.psql("SHOW port").strip() == str(replica.port)
    assert replica.psql("SELECT count(*) FROM tags", replicated.name).strip() == "0"
