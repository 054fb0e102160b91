"""A real `inkwell serve` process for tests whose subject is the process: workers, signals, output."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from launch import free_port, listening, run, spawn, stop, wait_until

INKWELL = [sys.executable, "-m", "service"]
CHEAP_ARGON2 = {
    "INKWELL_ARGON2_TIME_COST": "1",
    "INKWELL_ARGON2_MEMORY_COST_KIB": "1024",
    "INKWELL_ARGON2_PARALLELISM": "1",
}


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    # What the server printed, kept once it has stopped and its log is removed.
    captured: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        if self.captured is not None:
            return self.captured
        return self.log.read_text(errors="replace").removesuffix("\n")


# The suite's servers are driven hard from one address; tests of the limits turn them back on.
NO_RATE_LIMITS = {"INKWELL_RATE_LIMITS_ENABLED": "false"}


def server_env(database_url: str | None = None, **extra: str) -> dict[str, str]:
    """The caller's environment without INKWELL_/OTEL_ settings, plus cheap password hashing and no
    rate limits."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INKWELL_", "OTEL_", "PROMETHEUS_"))}
    if database_url is None:
        database = Path(tempfile.mkdtemp(prefix="inkwell-server-")) / "inkwell.db"
        database_url = f"sqlite+aiosqlite:///{database}"
    return env | CHEAP_ARGON2 | NO_RATE_LIMITS | {"INKWELL_DATABASE_URL": database_url} | extra


def migrate(env: dict[str, str]) -> None:
    run([*INKWELL, "migrate"], env=env, timeout=120)


@contextlib.contextmanager
def running_server(
    env: dict[str, str], *, workers: int = 1, migrate_first: bool = True
) -> Iterator[ServerProcess]:
    """Starts `inkwell serve`, waits for its port, collects its output, and stops it afterwards."""
    if migrate_first:
        migrate(env)
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="inkwell-serve-"))
    log = workdir / "inkwell.log"
    process = spawn([*INKWELL, "serve", "--port", str(port), "--workers", str(workers)], log=log, env=env)
    server = ServerProcess(process=process, port=port, log=log)
    try:
        wait_until(listening(port), what="inkwell serve", alive=process, log=log, timeout=60)
        yield server
    finally:
        stop(process, timeout=60)
        server.captured = server.output()
        shutil.rmtree(workdir, ignore_errors=True)
