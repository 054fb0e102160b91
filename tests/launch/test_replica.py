"""launch.replica: a hot standby that streams its primary's writes and replays them, refuses
writes of its own, holds its data as it was while replay is paused, and after a stop starts again
on the same port and replays what it missed, the primary having kept it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from launch import LaunchError
from tests.support.postgres import PostgresCluster, postgres_cluster
from tests.support.replica import StreamingReplica, streaming_replica


@pytest.fixture(scope="module")
def primary() -> Iterator[PostgresCluster]:
    with postgres_cluster() as cluster:
        cluster.psql("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")
        yield cluster


@pytest.fixture(scope="module")
def replica(primary: PostgresCluster) -> Iterator[StreamingReplica]:
    with streaming_replica(primary) as running:
        yield running


@pytest.fixture(autouse=True)
def replaying(replica: StreamingReplica) -> Iterator[None]:
    """Each test finds the replica running and replaying, whatever the one before did to it."""
    yield
    if replica.running():
        replica.resume_replay()
    else:
        replica.start()


def write_note(primary: PostgresCluster, body: str) -> int:
    return int(primary.psql(f"INSERT INTO notes (body) VALUES ('{body}') RETURNING id"))


def read_note(server: PostgresCluster | StreamingReplica, note: int) -> str | None:
    return server.psql(f"SELECT body FROM notes WHERE id = {note}").strip() or None


def test_a_row_written_on_the_primary_is_read_on_the_replica_once_it_has_caught_up(
    primary: PostgresCluster, replica: StreamingReplica
) -> None:
    assert replica.psql("SELECT pg_is_in_recovery()").strip() == "t"
    # No wait between: the commit is asynchronous, and the wait must still cover it.
    note = write_note(primary, "hello")
    replica.wait_caught_up(timeout=10)
    assert read_note(replica, note) == "hello"
    assert replica.psql("SELECT status FROM pg_stat_wal_receiver").strip() == "streaming"
    assert primary.psql("SELECT slot_name, active FROM pg_replication_slots").strip() == f"{replica.slot}|t"


def test_the_replica_refuses_writes(replica: StreamingReplica) -> None:
    with pytest.raises(LaunchError, match="cannot execute INSERT in a read-only transaction"):
        replica.psql("INSERT INTO notes (body) VALUES ('here')")
    with pytest.raises(LaunchError, match="cannot set transaction read-write mode during recovery"):
        replica.psql("BEGIN READ WRITE; COMMIT")


def test_with_replay_paused_a_new_row_is_received_but_not_shown_and_the_lag_grows_until_resumed(
    primary: PostgresCluster, replica: StreamingReplica
) -> None:
    replica.wait_caught_up(timeout=10)
    replica.pause_replay()
    assert replica.psql("SELECT pg_is_wal_replay_paused()").strip() == "t"
    lag = replica.lag_bytes()
    note = write_note(primary, "held back")
    assert replica.lag_bytes() > lag

    # Received, so it is replay that holds it back, not the stream.
    written = replica.primary_lsn()
    deadline = time.monotonic() + 10
    while replica.receive_lsn() < written:
        assert time.monotonic() < deadline, "the replica did not receive the primary's WAL"
        time.sleep(0.02)
    assert replica.replay_lsn() < written
    assert read_note(replica, note) is None
    with pytest.raises(TimeoutError, match="the replica to catch up"):
        replica.wait_caught_up(timeout=0.3)

    replica.resume_replay()
    replica.wait_caught_up(timeout=10)
    assert read_note(replica, note) == "held back"
    assert replica.replay_lsn() >= written


def test_a_stopped_replica_starts_again_on_its_port_and_replays_what_it_missed(
    primary: PostgresCluster, replica: StreamingReplica
) -> None:
    replica.stop()
    assert not replica.running()
    with pytest.raises(LaunchError, match="Connection refused"):
        replica.psql("SELECT 1")
    note = write_note(primary, "while away")
    # A new WAL segment and a checkpoint: without the replica's slot the primary would now recycle
    # the segment the replica stopped in, and the replica could not stream again.
    primary.psql("SELECT pg_switch_wal()")
    primary.psql("CHECKPOINT")

    replica.start()
    assert replica.psql("SHOW port").strip() == str(replica.port)
    replica.wait_caught_up(timeout=10)
    assert read_note(replica, note) == "while away"


def test_a_replica_that_is_done_with_leaves_no_slot_on_its_primary(primary: PostgresCluster) -> None:
    with streaming_replica(primary) as second:
        assert second.slot in primary.psql("SELECT slot_name FROM pg_replication_slots").split()
        second.wait_caught_up(timeout=10)
        assert second.psql("SELECT count(*) FROM notes").strip() != "0"
    assert second.slot not in primary.psql("SELECT slot_name FROM pg_replication_slots").split()
    assert not second.datadir.exists()
