"""The pieces a benchmark runs against, all on 127.0.0.1: the machine split into the server's cores
and everyone else's, PostgreSQL with the seeded data set, the receivers observability exports to,
Redis, and wrk as the load generator."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import launch
import launch.postgres
from tests.support.otlp import HttpReceiver, otlp_http_receiver
from tests.support.postgres import PostgresCluster, postgres_cluster
from tests.support.redis import RedisServer, redis_server
from tests.support.sentry import SentryReceiver, sentry_receiver
from tests.support.server import CHEAP_ARGON2

ROOT = Path(__file__).resolve().parents[1]
INKWELL = [sys.executable, "-m", "service"]
# The chart's defaults (charts/inkwell/values.yaml must say the same).
DEFAULT_SAMPLER = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}


@dataclass(frozen=True)
class Cores:
    """taskset's lists: the servers' cores, and those of everything else (wrk, PostgreSQL, Redis,
    the receivers, this process)."""

    server: str
    load: str


def _cpu_list(cpus: Iterable[int]) -> str:
    return ",".join(str(cpu) for cpu in cpus)


def cores() -> Cores:
    """The first half of the cores this process may use for the servers, the rest for the others;
    on a single core, that one for all."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) == 1:
        return Cores(_cpu_list(available), _cpu_list(available))
    half = len(available) // 2
    return Cores(_cpu_list(available[:half]), _cpu_list(available[half:]))


def cpu_set(cpus: str) -> set[int]:
    """taskset's list ("0", "1-3", "0,2") as a set of core numbers."""
    result: set[int] = set()
    for part in cpus.split(","):
        first, _, last = part.partition("-")
        result |= set(range(int(first), int(last or first) + 1))
    return result


def affinity(pid: int) -> set[int]:
    """The cores the kernel lets `pid` (a process or a thread) run on; empty once it has gone."""
    try:
        return os.sched_getaffinity(pid)
    except OSError:
        return set()


def base_env(database_url: str) -> dict[str, str]:
    """The caller's environment without its INKWELL_/OTEL_ settings, on the benchmark database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INKWELL_", "OTEL_", "PROMETHEUS_"))}
    return (
        env
        | CHEAP_ARGON2
        | {
            "INKWELL_DATABASE_URL": database_url,
            "INKWELL_ENVIRONMENT": "staging",
            "INKWELL_SECRET_KEY": "bench-secret-bench-secret-bench-secret-0123",
            # One client address sending as fast as it can is what rate limits refuse; the benchmarks
            # measure the service, and staging without Redis could not start with them on.
            "INKWELL_RATE_LIMITS_ENABLED": "false",
        }
    )


@contextlib.contextmanager
def seeded_postgres(
    *, users: int = 50, articles: int = 500, seed: int = 42
) -> Iterator[tuple[PostgresCluster, str]]:
    """A private PostgreSQL with the benchmark data set (the seed command's fixed proportions)."""
    with postgres_cluster() as cluster:
        cluster.psql("CREATE DATABASE bench")
        url = cluster.url("bench")
        env = {**os.environ, **CHEAP_ARGON2, "INKWELL_DATABASE_URL": url}
        launch.run([*INKWELL, "migrate"], env=env)
        launch.run(
            [*INKWELL, "seed", "--users", str(users), "--articles", str(articles), "--seed", str(seed)],
            env=env,
            timeout=600,
        )
        cluster.psql("VACUUM ANALYZE", database="bench")
        yield cluster, url


@dataclass
class Stack:
    """What the servers under test talk to, off their cores, and where their logs go."""

    cores: Cores
    cluster: PostgresCluster
    database_url: str
    otlp: HttpReceiver
    sentry: SentryReceiver
    redis: RedisServer | None
    logs: Path
    # Programs whose CPU time every round counts too, by name: their pid, its descendants included
    # (PostgreSQL's postmaster, so its backends). What a variant costs beside the server itself.
    beside: dict[str, int] = field(default_factory=dict)

    def placement(self) -> dict[str, set[int]]:
        """Where the kernel lets each of the others run: what keeps them off the servers' cores."""
        postmaster = launch.postgres.pid(self.cluster.datadir)
        placed = {
            "PostgreSQL": affinity(postmaster) if postmaster else set(),
            "this process and its receivers' threads": set().union(
                *(affinity(int(task.name)) for task in Path("/proc/self/task").iterdir())
            ),
        }
        if self.redis is not None and self.redis.process is not None:
            placed["Redis"] = affinity(self.redis.process.pid)
        return placed


@contextlib.contextmanager
def stack(*, redis: bool = False) -> Iterator[Stack]:
    """The seeded PostgreSQL, an OTLP and a Sentry receiver, and Redis if asked, on the load cores."""
    machine = cores()
    # First of all: PostgreSQL's postmaster (and so its backends), Redis and the receivers' threads
    # inherit this process's cores.
    os.sched_setaffinity(0, cpu_set(machine.load))
    logs = Path(tempfile.mkdtemp(prefix="inkwell-bench-"))
    with (
        seeded_postgres() as (cluster, url),
        otlp_http_receiver() as otlp,
        sentry_receiver() as sentry,
        contextlib.ExitStack() as more,
    ):
        cache = more.enter_context(redis_server()) if redis else None
        yield Stack(machine, cluster, url, otlp, sentry, cache, logs)


@dataclass(frozen=True)
class WrkResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float


_REQUESTS = re.compile(r"^\s*(\d+) requests in ", re.MULTILINE)
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


class NoRequests(RuntimeError):
    """wrk's run ended before any request completed (an endpoint slower than the run)."""


def parse_wrk(output: str, url: str = "") -> WrkResult:
    """wrk's --latency report; an error if any request failed, a number of a failing run is none."""
    if "Non-2xx or 3xx responses" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw failures against {url}:\n{output}")
    requests, rps = _REQUESTS.search(output), _RPS.search(output)
    if requests is None or rps is None or int(requests[1]) == 0:
        raise NoRequests(f"wrk completed no requests against {url}:\n{output}")
    latencies = {p: float(v) * _UNITS[u] for p, v, u in _LATENCY.findall(output)}
    return WrkResult(int(requests[1]), float(rps[1]), latencies["50"], latencies["99"])


def wrk(
    url: str,
    *,
    seconds: int,
    connections: int,
    cpus: str,
    headers: dict[str, str] | None = None,
    script: Path | None = None,
) -> WrkResult:
    argv = [launch.binary("wrk", "wrk"), "-t1", f"-c{connections}", f"-d{max(seconds, 1)}s", "--latency"]
    # A slow endpoint (the baseline at a million rows took 2.8 s) is measured, not counted a timeout.
    argv += ["--timeout", "30s"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    if script is not None:
        argv += ["-s", str(script)]
    return parse_wrk(launch.run(launch.pinned([*argv, url], cpus), timeout=seconds + 60), url)
