"""`inkwell serve --workers 2` on a machine whose every core is busy: no worker is killed while it
starts (uvicorn's 5 s health check killed 13 in a 50 s load run, each a start that would have
succeeded), and after a `kill -9` of one worker the other keeps serving while a replacement starts
and then serves too."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from launch import wait_until
from tests.support.server import ServerProcess, running_server, server_env

pytestmark = pytest.mark.slow

# uvicorn's own lines, each worker's: its pid as it starts, and once it serves.
SERVER_PROCESS = re.compile(r"Started server process \[(\d+)\]")
SERVING = "Application startup complete."
# Generous: a start under full contention took 12 to 17 s here with one busy loop a core; what is
# tested is that it is let finish, not how fast it is.
START_TIMEOUT = 240


@pytest.fixture
def busy_cores() -> Iterator[None]:
    """Two busy loops per core, for as long as the test needs every core taken."""
    loops = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * (os.cpu_count() or 2))
    ]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def started(server: ServerProcess) -> list[int]:
    """The workers that have started serving, in the order they started."""
    output = server.output()
    return [int(pid) for pid in SERVER_PROCESS.findall(output)][: output.count(SERVING)]


def replaced(server: ServerProcess) -> list[str]:
    return re.findall(r"worker \d+ [^;\"]*; starting a new one", server.output())


def test_workers_starting_on_busy_cores_are_let_start_and_a_killed_one_is_replaced(busy_cores: None) -> None:
    with running_server(server_env(), workers=2) as server:
        wait_until(
            lambda: len(started(server)) == 2,
            what="both workers started",
            alive=server.process,
            log=server.log,
            timeout=START_TIMEOUT,
        )
        assert replaced(server) == [], server.output()
        victim, survivor = started(server)

        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            # Served all along, by the other worker, while the replacement starts.
            while len(started(server)) < 3:
                assert client.get("/api/tags").status_code == 200
                assert time.monotonic() - killed < START_TIMEOUT, server.output()
                time.sleep(0.1)
            (replacement,) = set(started(server)) - {victim, survivor}
            assert replaced(server) == [f"worker {victim} died; starting a new one"]
            os.kill(survivor, signal.SIGKILL)
            # Only the replacement is left to serve now, and it does (the pool of keep-alive
            # connections may still hold one to the dead worker: a new client has none).
            with httpx.Client(base_url=server.url, timeout=30) as fresh:
                assert fresh.get("/api/tags").status_code == 200
            assert replacement != survivor
