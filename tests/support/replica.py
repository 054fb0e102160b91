"""A streaming replica of one of the suite's private clusters (launch.replica's, in a temp dir on a
free port), with what tests of reads from a replica need: how far it has replayed, a wait until it
has replayed what the primary has, replay held back and let go, and the replica taken away and
brought back on the same port."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from launch import free_port
from launch import postgres as pg
from launch import replica as standby
from service.replica import parse_lsn
from tests.support.postgres import PostgresCluster, psql


def lsn(text: str) -> int:
    """A WAL position as PostgreSQL prints it (`0/3000148`) as the byte offset it stands for, so
    that positions compare and subtract as numbers; none (NULL: nothing received yet) is 0."""
    return parse_lsn(text.strip()) if text.strip() else 0


@dataclass
class StreamingReplica:
    """A hot standby of `primary` in `datadir`, on 127.0.0.1:`port`."""

    datadir: Path
    port: int
    primary: PostgresCluster

    @property
    def slot(self) -> str:
        """The replication slot on the primary that keeps the WAL this replica has not received."""
        return f"inkwell_replica_{self.port}"

    def url(self, database: str = "postgres", driver: str = "asyncpg") -> str:
        """The primary's user logs in here too: the replica is a copy of the primary, roles included."""
        primary = self.primary
        return f"postgresql+{driver}://{primary.user}:{primary.password}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        return psql(self.port, sql, user=self.primary.user, password=self.primary.password, database=database)

    def running(self) -> bool:
        return pg.pid(self.datadir) is not None

    def replay_lsn(self) -> int:
        """The end of the last WAL record replayed: every write the primary had made up to there is
        visible here."""
        return lsn(self.psql("SELECT pg_last_wal_replay_lsn()"))

    def receive_lsn(self) -> int:
        """The end of the WAL received from the primary, replayed or not."""
        return lsn(self.psql("SELECT pg_last_wal_receive_lsn()"))

    def lag_bytes(self) -> int:
        """How much WAL the primary has written that this replica has not replayed."""
        return lsn(self.primary.psql("SELECT pg_current_wal_insert_lsn()")) - self.replay_lsn()

    def pause_replay(self, timeout: float = 10) -> None:
        """Holds replay back from now on, returning once it has stopped: the replica receives the
        primary's WAL and applies none of it, its data as it was, until resume_replay()."""
        self.psql("SELECT pg_wal_replay_pause()")
        self._wait(
            lambda: self.psql("SELECT pg_get_wal_replay_pause_state()").strip() == "paused",
            what="replay to pause",
            timeout=timeout,
        )

    def resume_replay(self) -> None:
        self.psql("SELECT pg_wal_replay_resume()")

    def wait_caught_up(self, timeout: float = 30) -> None:
        """Returns once this replica has replayed every write the primary had made at the call,
        committed or not."""
        target = self.primary_lsn()
        self._wait(lambda: self.replay_lsn() >= target, what="the replica to catch up", timeout=timeout)

    def primary_lsn(self) -> int:
        """A position in the primary's WAL past every write it has made before the call, and which
        it has flushed, so that it is streamed here. Writes a little WAL itself (a commit)."""
        # The primary commits asynchronously (synchronous_commit=off): a commit it has acknowledged
        # may still be in its WAL buffers only, beyond pg_current_wal_lsn() (what it has written) and
        # what it has sent; after an INSERT through psql it was so 46 times in 50. A transaction
        # that commits synchronously flushes the WAL through its commit record, past everything
        # inserted before: the insert position read in it is then reached by replay.
        row = self.primary.psql(
            "SELECT set_config('synchronous_commit', 'on', true), txid_current(), pg_current_wal_insert_lsn()"
        )
        return lsn(row.split("|")[-1])

    def _wait(self, done: Callable[[], bool], *, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:.0f}s for {what}")
            time.sleep(0.02)

    def start(self) -> None:
        """Starts the replica again on its port, where it left off (a copy only the first time)."""
        standby.start(
            self.datadir.parent,
            primary_port=self.primary.port,
            port=self.port,
            user=self.primary.user,
            password=self.primary.password,
            slot=self.slot,
            max_connections=self.primary.max_connections,
        )

    def stop(self) -> None:
        """A fast shutdown, as when a replica is restarted or fails: its sessions are ended, its
        connections closed, and the primary keeps the WAL it will need."""
        pg.stop(self.datadir, mode="fast")


@contextlib.contextmanager
def streaming_replica(primary: PostgresCluster) -> Iterator[StreamingReplica]:
    """A hot standby of `primary`, streaming, for the length of the block; then removed, with its
    replication slot on the primary (if the primary runs)."""
    root = Path(tempfile.mkdtemp(prefix="inkwell-replica-"))
    replica = StreamingReplica(datadir=root / "data", port=free_port(), primary=primary)
    try:
        replica.start()
        yield replica
    finally:
        pg.stop(replica.datadir, mode="immediate")
        try:
            if primary.running():
                standby.drop_slot(
                    primary.port, user=primary.user, password=primary.password, slot=replica.slot
                )
        finally:
            shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class ReplicatedDatabase:
    """A database created on the primary and already on its replica: its name, its URL on each."""

    name: str
    primary_url: str
    replica_url: str
