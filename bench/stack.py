"""The pieces a benchmark runs against, all on 127.0.0.1: PostgreSQL with the seeded data set,
`inkwell serve` processes pinned to their own cores, and wrk as the load generator."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import launch
from tests.support.postgres import PostgresCluster, postgres_cluster
from tests.support.server import CHEAP_ARGON2

INKWELL = [sys.executable, "-m", "service"]


def cores() -> tuple[str, str]:
    """(server cores, load generator cores): split the machine when it has more than one core."""
    count = os.cpu_count() or 1
    if count == 1:
        return "0", "0"
    half = max(count // 2, 1)
    return f"0-{half - 1}" if half > 1 else "0", f"{half}-{count - 1}" if count - half > 1 else str(half)


def cpu_set(cpus: str) -> set[int]:
    """taskset's list ("0", "1-3") as a set of core numbers."""
    first, _, last = cpus.partition("-")
    return set(range(int(first), int(last or first) + 1))


@contextlib.contextmanager
def seeded_postgres(
    *, users: int = 50, articles: int = 500, seed: int = 42
) -> Iterator[tuple[PostgresCluster, str]]:
    """A private PostgreSQL with the benchmark data set (the seed command's fixed proportions)."""
    with postgres_cluster() as cluster:
        cluster.psql("CREATE DATABASE bench")
        url = cluster.url("bench")
        env = {**os.environ, **CHEAP_ARGON2, "INKWELL_DATABASE_URL": url}
        subprocess.run([*INKWELL, "migrate"], env=env, check=True, capture_output=True)
        subprocess.run(
            [*INKWELL, "seed", "--users", str(users), "--articles", str(articles), "--seed", str(seed)],
            env=env,
            check=True,
            capture_output=True,
        )
        cluster.psql("VACUUM ANALYZE", database="bench")
        yield cluster, url


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def server(
    argv: list[str], *, port: int, cpus: str, log: Path, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Runs `argv` (a server that listens on `port`) on `cpus`, its output in `log`."""
    what = " ".join(argv[1:4])
    ready = launch.listening(port)
    with launch.running(
        argv, what=what, log=log, ready=ready, env=env, cpus=cpus, stop_timeout=60
    ) as process:
        yield Server(process, port)


def inkwell_server(
    env: dict[str, str], *, workers: int, cpus: str, log: Path
) -> contextlib.AbstractContextManager[Server]:
    port = launch.free_port()
    return server(
        [*INKWELL, "serve", "--port", str(port), "--workers", str(workers)],
        port=port,
        cpus=cpus,
        log=log,
        env=env,
    )


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float


_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(
    url: str,
    *,
    seconds: float,
    connections: int,
    cpus: str,
    headers: dict[str, str] | None = None,
    script: Path | None = None,
) -> WrkResult:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(int(seconds), 1)}s", "--latency"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    if script is not None:
        argv += ["-s", str(script)]
    result = subprocess.run(launch.pinned([*argv, url], cpus), check=True, capture_output=True, text=True)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", result.stdout).group(1))  # type: ignore[union-attr]
    if "Non-2xx or 3xx responses" in result.stdout or "Socket errors" in result.stdout:
        raise RuntimeError(f"wrk saw failures against {url}:\n{result.stdout}")
    latencies = {p: float(v) * _UNITS[u] for p, v, u in _LATENCY.findall(result.stdout)}
    return WrkResult(rps=rps, p50_ms=latencies["50"], p99_ms=latencies["99"])
