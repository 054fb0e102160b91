"""A real Redis server (Debian's redis-server) on a free port, without persistence, stoppable and
restartable on the same port so tests can take it away and bring it back."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from launch import binary, free_port, listening, spawn, stop, wait_until


@dataclass
class RedisServer:
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = self.workdir / "redis.log"
        self.process = spawn(
            [binary("redis-server", "redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            log=log,
        )  # fmt: skip
        wait_until(listening(self.port), what="redis-server", alive=self.process, log=log, timeout=30)

    def stop(self) -> None:
        # Killed, not asked: the tests that stop it play an outage, not a shutdown.
        if self.process is not None:
            stop(self.process, sig=signal.SIGKILL, timeout=30)
            self.process = None


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(port=free_port(), workdir=Path(tempfile.mkdtemp(prefix="inkwell-redis-")))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)
