"""A private PgBouncer for the suite (launch.pgbouncer's, in a temp dir on a free port) in front of
a PostgreSQL the suite reaches by URL, stoppable and restartable on the same port so tests can take
it away, and the URLs that lead through it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import make_url

from launch import free_port
from launch import pgbouncer as pgb
from service.dialects import Pooler

# The ports of the PgBouncers this process runs: a URL to one of them is a pooled one.
_RUNNING: set[int] = set()


def pooler_of(url: str) -> Pooler:
    """How the service must reach `url`: through PgBouncer if it names one of the suite's, as a
    deployment whose URL names a PgBouncer sets INKWELL_DATABASE_POOLER=pgbouncer."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.port in _RUNNING:
        return Pooler.pgbouncer
    return Pooler.none


@dataclass
class PgBouncer:
    config: Path
    port: int
    user: str
    password: str
    process: subprocess.Popen[bytes] | None = field(default=None)

    def url(self, database: str, driver: str = "asyncpg") -> str:
        return f"postgresql+{driver}://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def through(self, url: str) -> str:
        """The same database as `url` (a direct one), reached through this PgBouncer."""
        return self.url(make_url(url).database or "postgres")

    def show(self, what: str) -> list[dict[str, str]]:
        """SHOW `what` on the admin console: POOLS, STATS, CLIENTS, SERVERS."""
        return pgb.console(self.port, user=self.user, password=self.password, command=f"SHOW {what}")

    def open_servers(self, database: str, count: int) -> None:
        """Makes PgBouncer open `count` server connections to `database` now (as many clients in a
        transaction at once), so that a pooler that spreads transactions has them from the start."""
        import asyncpg

        async def hold() -> None:
            connection = await asyncpg.connect(
                host="127.0.0.1", port=self.port, user=self.user, password=self.password,
                database=database, statement_cache_size=0,
            )  # fmt: skip
            try:
                async with connection.transaction():
                    await connection.execute("SELECT pg_sleep(0.2)")
            finally:
                await connection.close()

        async def all_at_once() -> None:
            await asyncio.gather(*(hold() for _ in range(count)))

        # A loop of its own, so that sync and async fixtures alike may call it.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, all_at_once()).result()

    def start(self) -> None:
        self.process = pgb.start(self.config)
        _RUNNING.add(self.port)

    def stop(self) -> None:
        if self.process is not None:
            pgb.stop(self.process, self.config)
            self.process = None


@contextlib.contextmanager
def pgbouncer(server_url: str, pooling: pgb.Pooling = pgb.Pooling()) -> Iterator[PgBouncer]:  # noqa: B008
    """PgBouncer in transaction mode in front of the server of `server_url` (whose user and password
    it logs in with), running for the length of the block."""
    server = make_url(server_url)
    if not server.username or not server.password:
        raise ValueError(f"PgBouncer logs in with the user and password of {server_url!r}, which has none")
    root, port = Path(tempfile.mkdtemp(prefix="inkwell-pgbouncer-")), free_port()
    config = pgb.write(
        root,
        port=port,
        server_port=server.port or 5432,
        server_host=server.host or "127.0.0.1",
        users={server.username: server.password},
        pooling=pooling,
    )
    bouncer = PgBouncer(config=config, port=port, user=server.username, password=server.password)
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.stop()
        _RUNNING.discard(bouncer.port)
        shutil.rmtree(root, ignore_errors=True)
