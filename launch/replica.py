"""A hot-standby streaming replica of launch.postgres's cluster, from the same Debian binaries and
with the same throwaway options, for what must run against a real read replica.

It is a copy the primary's own pg_basebackup makes, which then streams the primary's WAL and
replays it: read-only, behind by as long as replay takes. The copy holds a physical replication
slot on the primary, so that the primary keeps every WAL segment the replica has not received yet,
even while the replica is stopped: drop_slot() releases it once the replica is gone for good.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from launch import LaunchError, run
from launch import postgres as pg


def start(
    root: Path,
    *,
    primary_port: int,
    port: int,
    user: str,
    password: str,
    slot: str,
    max_connections: int = pg.MAX_CONNECTIONS,
) -> Path:
    """Copies the cluster on 127.0.0.1:`primary_port` into <root>/data (unless a copy is there
    already: a stopped replica starts again where it left off), logging in as its superuser `user`
    with `password` (initdb's pg_hba.conf lets it replicate from 127.0.0.1 with SCRAM) and creating
    the replication slot `slot` there; then starts the copy as a hot standby on `port`, as
    launch.postgres.start() does, and returns once it accepts connections. `max_connections` must be
    at least the primary's: a hot standby with fewer refuses to start. Returns the data directory,
    which launch.postgres.stop() takes."""
    datadir = root / "data"
    _check(slot)
    if not (datadir / "PG_VERSION").exists():
        _copy(root, datadir, primary_port=primary_port, user=user, password=password, slot=slot)
    # A replica whose primary went away asks for its WAL again every 5 s by default: after a 1 s
    # outage it caught up 2.5 s after the primary was back; asking every 0.2 s, in 0.05 s.
    pg.serve(
        root,
        datadir,
        port=port,
        max_connections=max_connections,
        settings="-c hot_standby=on -c wal_retrieve_retry_interval=200ms",
    )
    return datadir


def _copy(root: Path, datadir: Path, *, primary_port: int, user: str, password: str, slot: str) -> None:
    basebackup = pg.bindir() / "pg_basebackup"
    if not basebackup.exists():
        raise LaunchError(
            f"{basebackup} not found: apt-get install postgresql-client "
            "(scripts/bootstrap.sh installs it with --test, --bench or --staging)"
        )
    system_user = pg.owner()
    if system_user:
        shutil.chown(root, system_user)
    # -R writes the connection (password included) and the slot into the copy's
    # postgresql.auto.conf and marks it a standby; -X stream takes the WAL written meanwhile along;
    # -c fast checkpoints at once instead of spreading the checkpoint out. Throwaway data: no sync.
    run(
        pg.as_owner(
            [str(basebackup), "-h", "127.0.0.1", "-p", str(primary_port), "-U", user, "-w",
             "-D", str(datadir), "-R", "-X", "stream", "-c", "fast", "-C", "-S", slot, "--no-sync"]
        ),
        env={**os.environ, "PGPASSWORD": password},
    )  # fmt: skip


def _check(slot: str) -> str:
    """`slot` if it is a name PostgreSQL takes for a slot, which is then safe to quote in SQL too."""
    if not re.fullmatch(r"[a-z0-9_]{1,63}", slot):
        raise ValueError(f"a replication slot is named with a-z, 0-9 and _ only (63 at most): {slot!r}")
    return slot


def drop_slot(primary_port: int, *, user: str, password: str, slot: str, timeout: float = 30) -> None:
    """Drops the replication slot `slot` of the cluster on 127.0.0.1:`primary_port`, once no
    replica uses it: a stopped replica's connection is closed a moment after it stops."""
    sql = (
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"  # noqa: S608 - _check()ed
        f" WHERE slot_name = '{_check(slot)}' AND NOT active;"
        f" SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}'"
    )
    deadline = time.monotonic() + timeout
    while True:
        left = run(
            [str(pg.bindir() / "psql"), "-h", "127.0.0.1", "-p", str(primary_port), "-U", user,
             "-d", "postgres", "-X", "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
            env={**os.environ, "PGPASSWORD": password},
        ).split()  # fmt: skip
        if left[-1:] == ["0"]:
            return
        if time.monotonic() > deadline:
            raise LaunchError(f"replication slot {slot} still in use after {timeout:.0f}s")
        time.sleep(0.1)
