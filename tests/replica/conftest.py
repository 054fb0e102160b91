"""Fixtures for tests of reads from a streaming replica: a primary of this directory's own (not the
suite's shared server, whose every test database the replica would copy and replay), its hot
standby, and per test a fresh migrated database on the primary that the replica already has.

Whatever a test does to them, the next one finds the primary running and the replica running and
replaying: a test that pauses replay or stops a server need not undo it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import make_url

from tests.conftest import PostgresServer
from tests.support.postgres import PostgresCluster, postgres_cluster
from tests.support.replica import ReplicatedDatabase, StreamingReplica, streaming_replica


@pytest.fixture(scope="session")
def primary() -> Iterator[PostgresCluster]:
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def primary_server(primary: PostgresCluster) -> PostgresServer:
    """The suite's way of creating databases (copies of a migrated template), on `primary`."""
    server = PostgresServer(primary.url("postgres"))
    server.create_template()
    return server


@pytest.fixture(scope="session")
def replica(primary: PostgresCluster) -> Iterator[StreamingReplica]:
    with streaming_replica(primary) as running:
        yield running


def bring_back(primary: PostgresCluster, replica: StreamingReplica) -> None:
    """The primary running, the replica running and replaying, whatever a test left them as."""
    if not primary.running():
        primary.start()
    if replica.running():
        replica.resume_replay()
    else:
        replica.start()


@pytest.fixture(autouse=True)
def replaying(primary: PostgresCluster, replica: StreamingReplica) -> Iterator[None]:
    yield
    bring_back(primary, replica)


@pytest.fixture
def replicated(
    primary: PostgresCluster, primary_server: PostgresServer, replica: StreamingReplica
) -> Iterator[ReplicatedDatabase]:
    """A new migrated database on the primary, handed out once the replica has it; dropped after."""
    primary_url = primary_server.create_database("inkwell_replicated")
    name = make_url(primary_url).database or ""
    try:
        replica.wait_caught_up()
        yield ReplicatedDatabase(name=name, primary_url=primary_url, replica_url=replica.url(name))
    finally:
        bring_back(primary, replica)
        primary_server.drop_database(primary_url)
