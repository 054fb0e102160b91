"""Distributed locust runs for the load tests: the environment a test's locust runs in, and the workers
a headless master (the test's own `locust --master`) counts on."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from loadtests.staging import ROOT


def locust_env() -> dict[str, str]:
    """This process's environment without the load test's own settings a developer may have set."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("INKWELL_LOADTEST_", "LOCUST_"))}


@contextmanager
def locust_workers(port: int, *, count: int = 2, wait: float = 60) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` locust workers reporting to a master on 127.0.0.1:`port`. Once the block ends they are
    given `wait` seconds to finish as the master stops them; any still running is killed."""
    argv = [
        sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--worker",
        "--master-host", "127.0.0.1", "--master-port", str(port),
    ]  # fmt: skip
    workers = [
        subprocess.Popen(argv, cwd=ROOT, env=locust_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(count)
    ]
    try:
        yield workers
        for worker in workers:
            worker.wait(timeout=wait)
    finally:
        for worker in workers:
            worker.kill()
