"""A real `inkwell serve` process for tests whose subject is the process: workers, signals, output."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.postgres import free_port, wait_for_port

INKWELL = [sys.executable, "-m", "service"]
CHEAP_ARGON2 = {
    "INKWELL_ARGON2_TIME_COST": "1",
    "INKWELL_ARGON2_MEMORY_COST_KIB": "1024",
    "INKWELL_ARGON2_PARALLELISM": "1",
}


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return "\n".join(self.lines)


def server_env(database_url: str | None = None, **extra: str) -> dict[str, str]:
    """The caller's environment without INKWELL_/OTEL_ settings, plus cheap password hashing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INKWELL_", "OTEL_", "PROMETHEUS_"))}
    if database_url is None:
        database = Path(tempfile.mkdtemp(prefix="inkwell-server-")) / "inkwell.db"
        database_url = f"sqlite+aiosqlite:///{database}"
    return env | CHEAP_ARGON2 | {"INKWELL_DATABASE_URL": database_url} | extra


def migrate(env: dict[str, str]) -> None:
    subprocess.run([*INKWELL, "migrate"], env=env, check=True, capture_output=True, timeout=120)


@contextlib.contextmanager
def running_server(
    env: dict[str, str], *, workers: int = 1, migrate_first: bool = True
) -> Iterator[ServerProcess]:
    """Starts `inkwell serve`, waits for its port, collects its output, and stops it afterwards."""
    if migrate_first:
        migrate(env)
    port = free_port()
    process = subprocess.Popen(
        [*INKWELL, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = ServerProcess(process=process, port=port)
    assert process.stdout is not None
    stdout = process.stdout

    def collect() -> None:
        for line in stdout:
            server.lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    try:
        wait_for_port(port, timeout=60)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(timeout=10)
