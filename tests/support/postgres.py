"""A private, throwaway PostgreSQL cluster for the suite: launch.postgres's cluster in a temp dir
on a free port, with the role and password the suite's URLs name, stoppable and restartable on the
same port so tests can take it away and bring it back."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from launch import free_port, run
from launch import postgres as pg


def psql(port: int, sql: str, *, user: str, password: str, database: str = "postgres") -> str:
    """What `sql` prints, unaligned and without headers (`a|b` a row), run by `user` on the server
    on 127.0.0.1:`port`; an error fails with PostgreSQL's message."""
    return run(
        [str(pg.bindir() / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", user,
         "-d", database, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        env={**os.environ, "PGPASSWORD": password},
    )  # fmt: skip


@dataclass
class PostgresCluster:
    datadir: Path
    port: int
    user: str = "inkwell"
    password: str = "inkwell"
    max_connections: int = pg.MAX_CONNECTIONS

    def url(self, database: str = "postgres", driver: str = "asyncpg") -> str:
        return f"postgresql+{driver}://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        return psql(self.port, sql, user=self.user, password=self.password, database=database)

    def start(self) -> None:
        pg.start(
            self.datadir.parent,
            port=self.port,
            user=self.user,
            password=self.password,
            max_connections=self.max_connections,
        )

    def running(self) -> bool:
        return pg.pid(self.datadir) is not None

    def stop(self) -> None:
        """A fast shutdown, as in a restart or failover: sessions are ended, connections closed."""
        pg.stop(self.datadir, mode="fast")


@contextlib.contextmanager
def postgres_cluster(*, max_connections: int = pg.MAX_CONNECTIONS) -> Iterator[PostgresCluster]:
    root = Path(tempfile.mkdtemp(prefix="inkwell-pg-"))
    cluster = PostgresCluster(datadir=root / "data", port=free_port(), max_connections=max_connections)
    try:
        cluster.start()
        yield cluster
    finally:
        pg.stop(cluster.datadir, mode="immediate")
        shutil.rmtree(root, ignore_errors=True)
