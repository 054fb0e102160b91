"""A staging-like stack on this machine to load-test: PostgreSQL behind PgBouncer with a streaming
replica for reads, Redis, several `inkwell serve` processes behind an nginx configured like the
chart's Ingress, and a Prometheus scraping them with the generated rules. Everything listens on
127.0.0.1; state, logs and pid files live in one directory.

    python -m loadtests.staging up [--state-dir var/staging] [--services 2] [--seed-articles 100]
                                   [--no-pgbouncer] [--no-replica]
    python -m loadtests.staging status
    python -m loadtests.staging down

`up` writes the URLs to <state-dir>/staging.json and staging.env (INKWELL_STAGING_URL, ...).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import yaml
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import URL, make_url

import launch
import launch.pgbouncer
import launch.postgres
import launch.prometheus
import launch.replica
from launch import LaunchError, alive, free_port, spawn, stop, wait_until

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = ROOT / "var" / "staging"
NGINX_TEMPLATE = Path(__file__).with_name("nginx.conf.template")
INKWELL = [sys.executable, "-m", "service"]
# The chart's values (charts/inkwell/values.yaml) that the stack copies, and the pool sizes it derives
# for its default two pods from the database's connection budget (as the stack runs two processes).
CHART = {
    "proxy_body_size": "1m",
    "timeout_seconds": 30,
    "live_timeout_seconds": 3600,
    "db_pool_size": 10,
    "db_max_overflow": 10,
    "db_connection_budget": 89,
    # The rate limits (rateLimits), on as the chart has them with Redis: the load tests' traffic comes
    # from one address, and the mix trips none of them (tests/loadtests/test_staging_config.py).
    "rate_limit_login": "100/minute",
    "rate_limit_registration": "30/minute",
    "rate_limit_writes": "300/minute",
    "rate_limit_reads": "12000/minute",
    "rate_limit_login_free_failures": 5,
    "rate_limit_login_backoff_seconds": 1,
    "rate_limit_login_backoff_max_seconds": 300,
}
# PgBouncer as docs/connections.md has production run it: server connections well under PostgreSQL's
# max_connections, room for every process's pool and overflow, and a transaction that finds no
# server connection waiting about as long as one waits for the service's own pool (10 s).
PGBOUNCER = launch.pgbouncer.Pooling(
    pool_size=20, max_client_conn=1000, query_wait_timeout=10, server_login_retry=5
)
# The replica's slot on the primary. Never dropped: the primary's data goes with the stack, at the next `up`.
REPLICA_SLOT = "inkwell_staging_replica"
# Labels the chart's ServiceMonitor gives every series (dashboards/config.py selects on them).
LABELS = {"app": "inkwell", "namespace": "staging", "release": "inkwell", "container": "inkwell"}

# A temp dir named so holds what other users must reach (see Stack.scratch_dir); `up` removes the last.
SCRATCH_PREFIX = "inkwell-staging-"
# How long `down` lets each component, and then what is left of all of them, take to exit before it
# kills them: the services drain for INKWELL_DRAIN_SECONDS and finish their requests first.
STOP_TIMEOUT = 30.0


class StackError(LaunchError):
    pass


@dataclass
class Stack:
    """Where everything runs; saved as <state_dir>/staging.json."""

    state_dir: Path
    url: str  # nginx, the way in, like the Ingress
    prometheus_url: str
    service_urls: list[str]
    database_url: str  # PostgreSQL itself: migrations, seeding, psql
    redis_url: str
    # PgBouncer's, which the services use; empty when the stack runs without it (--no-pgbouncer).
    pooler_url: str = ""
    # The streaming replica of database_url, which the services read from (INKWELL_DATABASE_READ_URL),
    # straight and not through PgBouncer (see _start_replica); empty without one (--no-replica).
    replica_url: str = ""
    # Each service's /metrics, on a port of its own as the chart serves it (INKWELL_METRICS_PORT).
    metrics_urls: list[str] = field(default_factory=list)
    # In /tmp, not state_dir: as root, PostgreSQL runs as `postgres` and nginx's workers as `nobody`,
    # who may not reach into state_dir (pytest's are private to root). <state_dir>/postgres links here.
    scratch_dir: str = ""
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def json_path(self) -> Path:
        return self.state_dir / "staging.json"

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "state_dir": str(self.state_dir)}

    def save(self) -> None:
        self.json_path.write_text(json.dumps(self.as_json(), indent=2) + "\n")
        self.json_path.chmod(0o600)  # the database URL holds its password
        env = {
            "INKWELL_STAGING_URL": self.url,
            "INKWELL_STAGING_PROMETHEUS_URL": self.prometheus_url,
            "INKWELL_STAGING_SERVICE_URLS": " ".join(self.service_urls),
            "INKWELL_STAGING_METRICS_URLS": " ".join(self.metrics_urls),
            "INKWELL_STAGING_DATABASE_URL": self.database_url,
            "INKWELL_STAGING_POOLER_URL": self.pooler_url,
            "INKWELL_STAGING_REPLICA_URL": self.replica_url,
            "INKWELL_STAGING_REDIS_URL": self.redis_url,
        }
        env_path = self.state_dir / "staging.env"
        env_path.write_text("".join(f"{key}='{value}'\n" for key, value in env.items()))
        env_path.chmod(0o600)

    @classmethod
    def load(cls, state_dir: Path) -> Stack:
        data = json.loads((state_dir / "staging.json").read_text())
        known = {f.name for f in fields(cls)}  # a file from an older version may hold more
        return cls(**{key: value for key, value in data.items() if key in known} | {"state_dir": state_dir})


# -- processes ------------------------------------------------------------------------------------


def _run(argv: list[str], *, env: Mapping[str, str] | None = None, timeout: float = 120) -> None:
    launch.run(argv, env=env, cwd=ROOT, timeout=timeout)


def _spawn(argv: list[str], *, log: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Starts a program in its own session, so it outlives `up`; its output goes to `log`."""
    return spawn(argv, log=log, env=env, cwd=ROOT, detach=True)


def _http_status(url: str) -> int:
    return httpx.get(url, timeout=2).status_code


# -- components -----------------------------------------------------------------------------------


def _start_postgres(root: Path, port: int, password: str) -> str:
    launch.postgres.start(root, port=port, user="inkwell", password=password)
    env = {**os.environ, "PGPASSWORD": password}
    createdb = launch.postgres.bindir() / "createdb"
    _run([str(createdb), "-h", "127.0.0.1", "-p", str(port), "-U", "inkwell", "inkwell"], env=env)
    return f"postgresql+asyncpg://inkwell:{password}@127.0.0.1:{port}/inkwell"


def _start_replica(stack: Stack, port: int) -> str:
    """A hot-standby streaming replica of the stack's PostgreSQL, copied from it as it is now;
    returns its URL, with the primary's user and database (the copy has them).

    The chart has PgBouncer reach the replica as a second [databases] entry (docs/connections.md),
    but launch.pgbouncer.write() sends every database to one server (`* = host= port=`), so the
    services read from the replica straight. INKWELL_DATABASE_POOLER=pgbouncer applies to this URL
    all the same: unnamed statements, which PostgreSQL takes directly too. The replica then sees the
    processes' pools (2 x (10 + 10) for the default two), well within its max_connections."""
    database, user, password, primary_port = _login(stack.database_url)
    launch.replica.start(
        _replica_data(stack).parent,
        primary_port=primary_port,
        port=port,
        user=user,
        password=password,
        slot=REPLICA_SLOT,
        max_connections=launch.postgres.MAX_CONNECTIONS,  # a hot standby needs the primary's at least
    )
    return database.set(port=port).render_as_string(hide_password=False)


def _pgbouncer_config(stack: Stack) -> Path:
    return Path(stack.scratch_dir) / "pgbouncer" / launch.pgbouncer.CONFIG


def _start_pgbouncer(stack: Stack, port: int) -> str:
    """PgBouncer in front of the stack's PostgreSQL, holding PostgreSQL's SCRAM verifier of the
    password rather than the password (docs/connections.md); returns the URL through it."""
    database, user, password, server_port = _login(stack.database_url)
    config = launch.pgbouncer.write(
        _pgbouncer_config(stack).parent,
        port=port,
        server_port=server_port,
        users={user: launch.pgbouncer.verifier(server_port, user=user, password=password)},
        pooling=PGBOUNCER,
    )
    stack.pids["pgbouncer"] = launch.pgbouncer.start(config, detach=True).pid
    return database.set(port=port).render_as_string(hide_password=False)


def _login(url: str) -> tuple[URL, str, str, int]:
    """A URL of the stack's, and the user, password and port it names."""
    parsed = make_url(url)
    if parsed.username is None or parsed.password is None or parsed.port is None:
        raise StackError(f"{parsed!r} names no user, password or port")
    return parsed, parsed.username, parsed.password, parsed.port


def pgbouncer_pools(stack: Stack) -> list[dict[str, str]]:
    """PgBouncer's pools (SHOW POOLS) but its console's own: clients and server connections."""
    _, user, password, port = _login(stack.pooler_url)
    rows = launch.pgbouncer.console(port, user=user, password=password, command="SHOW POOLS")
    return [row for row in rows if row["database"] != "pgbouncer"]


def _start_redis(state: Path, port: int) -> int:
    root = state / "redis"
    root.mkdir()
    log = root / "redis.log"
    process = _spawn(
        [launch.binary("redis-server", "redis-server"), "--bind", "127.0.0.1", "--port", str(port),
         "--save", "", "--appendonly", "no", "--dir", str(root), "--protected-mode", "yes"],
        log=log,
    )  # fmt: skip

    def pong() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    wait_until(pong, what="redis-server", alive=process, log=log)
    return process.pid


def service_env(
    database_url: str, redis_url: str, secret_key: str, extra: Mapping[str, str]
) -> dict[str, str]:
    """As the chart runs the service (environment staging, its pool sizes and connection budget, metrics
    on, tracing off as its default otlpEndpoint is empty); the caller's INKWELL_/OTEL_ settings are not
    inherited."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("INKWELL_", "OTEL_", "PROMETHEUS_"))}
    git = ["git", "rev-parse", "--short", "HEAD"]
    revision = subprocess.run(git, capture_output=True, text=True, cwd=ROOT, check=False).stdout.strip()  # noqa: S603
    return (
        base
        | {
            "INKWELL_ENVIRONMENT": "staging",
            "INKWELL_SECRET_KEY": secret_key,
            "INKWELL_DATABASE_URL": database_url,
            "INKWELL_REDIS_URL": redis_url,
            "INKWELL_DB_POOL_SIZE": str(CHART["db_pool_size"]),
            "INKWELL_DB_MAX_OVERFLOW": str(CHART["db_max_overflow"]),
            "INKWELL_DB_CONNECTION_BUDGET": str(CHART["db_connection_budget"]),
            "INKWELL_RATE_LIMITS_ENABLED": "true",
            **{f"INKWELL_{key.upper()}": str(CHART[key]) for key in CHART if key.startswith("rate_limit_")},
            "INKWELL_LOG_LEVEL": "INFO",
            "INKWELL_LOG_FORMAT": "json",
            "INKWELL_METRICS_ENABLED": "true",
            # nginx is the trusted proxy whose X-Forwarded-For names the client, as the ingress is.
            "INKWELL_TRUSTED_PROXIES": "127.0.0.1",
            # The names this stack is reached by (nginx passes the client's Host), as the chart
            # passes its ingress host.
            "INKWELL_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "INKWELL_GIT_REVISION": revision or "unknown",
            "PYTHONUNBUFFERED": "1",  # log lines reach the log file as they happen
        }
        | dict(extra)
    )


def _start_service(state: Path, index: int, port: int, env: Mapping[str, str]) -> int:
    log = state / "services" / f"inkwell-{index}.log"
    process = _spawn(
        [*INKWELL, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"], log=log, env=env
    )
    return process.pid


def _wait_service(state: Path, index: int, url: str, pid: int) -> None:
    wait_until(
        launch.answers(f"{url}/readyz"),
        what=f"inkwell-{index} ({url})",
        log=state / "services" / f"inkwell-{index}.log",
        alive=lambda: alive(pid, "service serve"),
    )


def nginx_config(*, prefix: Path, temp: Path, port: int, upstreams: list[int]) -> str:
    """nginx.conf.template with this stack's ports and paths and the chart's ingress values."""
    servers = "\n".join(f"        server 127.0.0.1:{upstream};" for upstream in upstreams)
    values = {
        "@PREFIX@": str(prefix),
        "@TEMP@": str(temp),
        "@PORT@": str(port),
        "@UPSTREAMS@": servers,
        "@PROXY_BODY_SIZE@": CHART["proxy_body_size"],
        "@TIMEOUT@": f"{CHART['timeout_seconds']}s",
        "@LIVE_TIMEOUT@": f"{CHART['live_timeout_seconds']}s",
        "@USER@": "user nobody nogroup;" if os.geteuid() == 0 else "",
    }
    config = NGINX_TEMPLATE.read_text()
    for placeholder, value in values.items():
        config = config.replace(placeholder, str(value))
    return config


def _start_nginx(state: Path, scratch: Path, port: int, upstreams: list[int]) -> int:
    root = state / "nginx"
    root.mkdir()
    # Request bodies over 16 KB are buffered to files there, by the workers.
    temp = scratch / "nginx-temp"
    temp.mkdir()
    if os.geteuid() == 0:
        shutil.chown(temp, "nobody", "nogroup")
    config = root / "nginx.conf"
    config.write_text(nginx_config(prefix=root, temp=temp, port=port, upstreams=upstreams))
    nginx = launch.binary("nginx", "nginx")
    command = [nginx, "-p", str(root), "-c", str(config), "-e", str(root / "error.log")]
    _run([*command, "-t", "-q"])
    _run(command)  # nginx forks its master into the background and writes its pid file
    pid_file = root / "nginx.pid"
    wait_until(
        lambda: pid_file.exists() and _http_status(f"http://127.0.0.1:{port}/healthz") == 404,
        what="nginx",
        log=root / "error.log",
        alive=lambda: not pid_file.exists() or alive(int(pid_file.read_text()), "nginx"),
    )
    return int(pid_file.read_text())


def prometheus_config(rule_files: list[Path], services: list[int]) -> dict[str, Any]:
    """One target per service process (its metrics port), each with the chart's labels and its own `pod`."""
    return {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": "inkwell",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{port}"], "labels": {**LABELS, "pod": f"inkwell-{index}"}}
                    for index, port in enumerate(services)
                ],
            }
        ],
    }


def _start_prometheus(state: Path, port: int, services: list[int]) -> int:
    root = state / "prometheus"
    (root / "rules").mkdir(parents=True)
    # The chart's generated rules, every group evaluated at the global interval.
    rules = launch.prometheus.local_rule_files(root / "rules")
    config = root / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(rules, services), sort_keys=False))
    log = root / "prometheus.log"
    process = _spawn(launch.prometheus.command(config, data=root / "data", port=port), log=log)
    wait_until(
        launch.answers(f"http://127.0.0.1:{port}{launch.prometheus.READY}"),
        what="prometheus",
        log=log,
        alive=process,
    )
    return process.pid


# -- the stack ------------------------------------------------------------------------------------


def _marker(stack: Stack, name: str) -> str:
    """What the command line of the stack's process `name` contains while it is still that process."""
    if name.startswith("inkwell-"):
        return f"--port {stack.service_urls[int(name.split('-')[1])].rsplit(':', 1)[1]}"
    if name == "redis":  # redis-server retitles itself "redis-server 127.0.0.1:<port>"
        return stack.redis_url.removeprefix("redis://").rsplit("/", 1)[0]
    if name == "pgbouncer":
        return str(_pgbouncer_config(stack))
    return str(
        stack.state_dir / name
    )  # nginx -p <state>/nginx, prometheus --config.file=<state>/prometheus/...


def running(state_dir: Path) -> dict[str, bool]:
    """Each component of the stack in `state_dir` and whether it runs."""
    if not (state_dir / "staging.json").exists():
        return {}
    stack = Stack.load(state_dir)
    status = {name: alive(pid, _marker(stack, name)) for name, pid in stack.pids.items()}
    status["postgres"] = launch.postgres.pid(_postgres_data(stack)) is not None
    # Like PostgreSQL, known by its data directory's postmaster.pid; also when `up` failed before
    # it saved the replica's URL.
    replica = launch.postgres.pid(_replica_data(stack)) is not None
    if stack.replica_url or replica:
        status["replica"] = replica
    return status


def _postgres_data(stack: Stack) -> Path:
    return Path(stack.scratch_dir) / "postgres" / "data"


def _replica_data(stack: Stack) -> Path:
    return Path(stack.scratch_dir) / "replica" / "data"


def up(
    state_dir: Path = DEFAULT_STATE_DIR,
    *,
    services: int = 2,
    seed_articles: int = 0,
    port: int = 0,
    env: Mapping[str, str] | None = None,
    pgbouncer: bool = True,
    replica: bool = True,
) -> Stack:
    """Starts a fresh stack (the previous one's state is removed) and returns where it runs; the
    services reach PostgreSQL through PgBouncer unless `pgbouncer` is false, and read from a
    streaming replica of it unless `replica` is false."""
    state_dir = state_dir.resolve()
    if any(running(state_dir).values()):
        raise StackError(f"a stack is already running from {state_dir}: stop it first (down)")
    _remove(state_dir)
    (state_dir / "services").mkdir(parents=True)
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
    scratch.chmod(0o755)
    # PostgreSQL, its replica and PgBouncer run as postgres when we are root.
    for shared in ("postgres", "replica", "pgbouncer"):
        (scratch / shared).mkdir()
        (state_dir / shared).symlink_to(scratch / shared)
    ports = {
        "postgres": free_port(),
        "replica": free_port(),
        "pgbouncer": free_port(),
        "redis": free_port(),
        "prometheus": free_port(),
    }
    service_ports = [free_port() for _ in range(services)]
    metrics_ports = [free_port() for _ in range(services)]
    stack = Stack(
        state_dir=state_dir,
        url=f"http://127.0.0.1:{port or free_port()}",
        prometheus_url=f"http://127.0.0.1:{ports['prometheus']}",
        service_urls=[f"http://127.0.0.1:{p}" for p in service_ports],
        metrics_urls=[f"http://127.0.0.1:{p}" for p in metrics_ports],
        database_url="",
        redis_url=f"redis://127.0.0.1:{ports['redis']}/0",
        scratch_dir=str(scratch),
    )
    try:
        stack.save()
        stack.database_url = _start_postgres(
            scratch / "postgres", ports["postgres"], secrets.token_urlsafe(24)
        )
        stack.save()  # from here on `down` finds what to stop, even if the rest fails
        if replica:
            # Copied before the migrations and the seed, which it then replays as it will the load.
            stack.replica_url = _start_replica(stack, ports["replica"])
            stack.save()
        if pgbouncer:
            stack.pooler_url = _start_pgbouncer(stack, ports["pgbouncer"])
            stack.save()
        stack.pids["redis"] = _start_redis(state_dir, ports["redis"])
        stack.save()
        secret_key = secrets.token_urlsafe(48)
        # Migrations and the seed go straight to PostgreSQL, as a migration Job should: they hold
        # locks and long transactions a transaction pooler has no reason to see.
        direct = service_env(stack.database_url, stack.redis_url, secret_key, env or {})
        _run([*INKWELL, "migrate"], env=direct)
        if seed_articles:
            users = max(seed_articles // 10, 2)
            _run([*INKWELL, "seed", "--users", str(users), "--articles", str(seed_articles)], env=direct)
        pooled = {"INKWELL_DATABASE_POOLER": "pgbouncer"} if pgbouncer else {}
        reads = {"INKWELL_DATABASE_READ_URL": stack.replica_url} if replica else {}
        environment = service_env(
            stack.pooler_url or stack.database_url,
            stack.redis_url,
            secret_key,
            {**pooled, **reads, **(env or {})},
        )
        for index, (service_port, metrics_port) in enumerate(zip(service_ports, metrics_ports, strict=True)):
            metrics = {"INKWELL_METRICS_PORT": str(metrics_port)}
            stack.pids[f"inkwell-{index}"] = _start_service(
                state_dir, index, service_port, environment | metrics
            )
        stack.save()
        for index, url in enumerate(stack.service_urls):
            _wait_service(state_dir, index, url, stack.pids[f"inkwell-{index}"])
        nginx_port = int(stack.url.rsplit(":", 1)[1])
        stack.pids["nginx"] = _start_nginx(state_dir, scratch, nginx_port, service_ports)
        stack.save()
        stack.pids["prometheus"] = _start_prometheus(state_dir, ports["prometheus"], metrics_ports)
        stack.save()
    except BaseException:
        down(state_dir)
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return stack


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid: (session id, state, start time) of every process in /proc, zombies included."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command's name, which is in parentheses and may hold any character.
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry.name)] = (int(fields[3]), fields[0], fields[19])
    return found


def _session(sid: int) -> dict[int, str]:
    """pid: start time of the processes of session `sid` that have not exited. Each component was
    started in a session of its own (nginx makes one for its master and workers), so this is the
    program with everything it started: its workers, and children left running after it has gone."""
    return {
        pid: started
        for pid, (session, state, started) in _processes().items()
        if session == sid and state not in {"Z", "X"}
    }


def _wait_gone(processes: dict[int, str], timeout: float) -> None:
    """Returns once none of `processes` (pid: start time) is left, not even as a zombie: the stack's
    processes are not our children but init's (the `up` that started them has exited), and `ps`
    lists one until init has collected it, a few seconds on this machine. Kills those still running
    after `timeout`; raises if one still runs 10 s after that, and returns after the bound when
    only exited ones remain (nothing can hurry init)."""

    def left() -> dict[int, str]:
        now = _processes()
        return {
            pid: now[pid][1] for pid, started in processes.items() if pid in now and now[pid][2] == started
        }

    for sig, seconds in ((None, timeout), (signal.SIGKILL, 10.0)):
        if sig is not None:
            for pid, state in left().items():
                if state not in {"Z", "X"}:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, sig)
        deadline = time.monotonic() + seconds
        while (remaining := left()) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not remaining:
            return
    running = sorted(pid for pid, state in remaining.items() if state not in {"Z", "X"})
    if running:
        raise StackError(f"still running after SIGKILL: pids {running}")


def down(state_dir: Path = DEFAULT_STATE_DIR, *, timeout: float = STOP_TIMEOUT) -> list[str]:
    """Stops every component of the stack in `state_dir` (logs and data stay) and returns their names
    once every process of theirs has exited, workers and children included (those left after
    `timeout` are killed)."""
    state_dir = state_dir.resolve()
    stopped = []
    processes: dict[int, str] = {}  # pid: start time, of every process of the stack's components
    if (state_dir / "staging.json").exists():
        stack = Stack.load(state_dir)
        services = sorted(n for n in stack.pids if n.startswith("inkwell-"))
        order = ["nginx", *services, "prometheus", "redis", "pgbouncer"]
        for name in order:
            pid = stack.pids.get(name)
            if pid is None:
                continue
            marker = _marker(stack, name)
            # nginx: SIGQUIT finishes the requests in flight; the service drains on SIGTERM.
            sig = signal.SIGQUIT if name == "nginx" else signal.SIGTERM
            members = _session(pid)
            if alive(pid, marker):
                processes |= members
                stop(pid, marker=marker, sig=sig, timeout=timeout)
                stopped.append(name)
            elif members and pid not in members:
                # Its program has gone, processes it started have not. Linux reuses no pid that is
                # still a session's id, so they are ours (a pid reused by another leader is not).
                processes |= members
                for member in members:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(member, sig)
                stopped.append(name)
        # The replica first: stopped after its primary, it would keep asking for WAL meanwhile.
        for name, datadir in (("replica", _replica_data(stack)), ("postgres", _postgres_data(stack))):
            if (postmaster := launch.postgres.pid(datadir)) is not None:
                # pg_ctl waits for the postmaster to exit, not for init to collect it.
                if (entry := _processes().get(postmaster)) is not None:
                    processes[postmaster] = entry[2]
                launch.postgres.stop(datadir, mode="fast")
                stopped.append(name)
        _wait_gone(processes, timeout)
    return stopped


def _remove(state_dir: Path) -> None:
    """The previous stack's state (it is stopped), its scratch dir included."""
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, TypeError):
        scratch = Path(Stack.load(state_dir).scratch_dir)
        if scratch.name.startswith(SCRATCH_PREFIX):
            shutil.rmtree(scratch, ignore_errors=True)
    names = (
        "postgres",
        "replica",
        "pgbouncer",
        "redis",
        "services",
        "nginx",
        "prometheus",
        "staging.json",
        "staging.env",
    )
    for name in names:
        path = state_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


@contextlib.contextmanager
def staging_stack(state_dir: Path, **options: Any) -> Iterator[Stack]:
    """A fresh stack in `state_dir` for the length of the block (options as for up())."""
    stack = up(state_dir, **options)
    try:
        yield stack
    finally:
        down(state_dir)
        shutil.rmtree(stack.scratch_dir, ignore_errors=True)


# -- command line ---------------------------------------------------------------------------------

cli = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
StateDir = Annotated[Path, typer.Option(help="Where the stack keeps its data, logs and pid files")]


def _print_urls(stack: Stack, console: Console) -> None:
    table = Table(title=f"Inkwell staging ({stack.state_dir})", title_justify="left")
    table.add_column("component")
    table.add_column("URL")
    table.add_row("nginx (the ingress: /api, /docs, /redoc, /openapi.json)", stack.url)
    table.add_row("Prometheus", stack.prometheus_url)
    for index, (url, metrics) in enumerate(zip(stack.service_urls, stack.metrics_urls, strict=True)):
        table.add_row(f"inkwell-{index} (/healthz, /readyz; /metrics on {metrics})", url)
    table.add_row("Redis", stack.redis_url)
    table.add_row("PostgreSQL", stack.database_url.split("@")[-1])
    if stack.replica_url:
        table.add_row("PostgreSQL replica (the services' reads, straight)", stack.replica_url.split("@")[-1])
    if stack.pooler_url:
        table.add_row("PgBouncer (the services' way to PostgreSQL)", stack.pooler_url.split("@")[-1])
    console.print(table)
    console.print(f"URLs in {stack.state_dir / 'staging.env'} (INKWELL_STAGING_URL, ...) and staging.json")


def _print_pools(pools: list[dict[str, str]], console: Console) -> None:
    """PgBouncer's pools: clients active and waiting for a server connection, server connections
    in use and idle, and how long the oldest waiting client has waited."""
    table = Table(title="PgBouncer (SHOW POOLS)", title_justify="left")
    columns = {
        "database": "database",
        "pool_mode": "mode",
        "cl_active": "clients",
        "cl_waiting": "waiting",
        "sv_active": "servers",
        "sv_idle": "idle",
        "maxwait": "max wait s",
    }
    for title in columns.values():
        table.add_column(title)
    for pool in pools:
        table.add_row(*(pool.get(key, "") for key in columns))
    console.print(table)


@cli.command("up")
def up_command(
    state_dir: StateDir = DEFAULT_STATE_DIR,
    services: Annotated[int, typer.Option(min=1, help="inkwell serve processes behind nginx")] = 2,
    seed_articles: Annotated[int, typer.Option(min=0, help="Articles of `inkwell seed` to start with")] = 100,
    port: Annotated[int, typer.Option(help="nginx's port (0: a free one)")] = 0,
    env: Annotated[list[str] | None, typer.Option(help="KEY=VALUE for the services, repeatable")] = None,
    pgbouncer: Annotated[
        bool, typer.Option(help="PgBouncer in transaction mode between the services and PostgreSQL")
    ] = True,
    replica: Annotated[
        bool, typer.Option(help="A streaming replica of PostgreSQL for the services' reads")
    ] = True,
) -> None:
    """Start a fresh stack and print its URLs."""
    console = Console(highlight=False)
    extra = dict(item.split("=", 1) for item in env or [])
    try:
        with console.status(
            "starting PostgreSQL, its replica, PgBouncer, Redis, inkwell, nginx and Prometheus"
        ):
            stack = up(
                state_dir,
                services=services,
                seed_articles=seed_articles,
                port=port,
                env=extra,
                pgbouncer=pgbouncer,
                replica=replica,
            )
    except LaunchError as error:
        console.print(f"[red]staging up failed:[/] {error}")
        raise typer.Exit(1) from None
    _print_urls(stack, console)


@cli.command("down")
def down_command(
    state_dir: StateDir = DEFAULT_STATE_DIR,
    purge: Annotated[bool, typer.Option(help="Also remove its logs and data")] = False,
) -> None:
    """Stop the stack (its logs and data stay until the next `up`, unless --purge)."""
    stopped = down(state_dir)
    Console(highlight=False).print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    if purge:
        _remove(state_dir.resolve())


@cli.command("status")
def status_command(
    state_dir: StateDir = DEFAULT_STATE_DIR,
    output: Annotated[str, typer.Option("-o", "--output", help="table or json")] = "table",
) -> None:
    """Show each component and whether it runs; exit 1 unless all do."""
    status = running(state_dir)
    stack = Stack.load(state_dir) if status else None
    pools = pgbouncer_pools(stack) if stack and stack.pooler_url and status.get("pgbouncer") else []
    if output == "json":
        described = stack.as_json() if stack else {}
        typer.echo(json.dumps({"running": status, **described, "pgbouncer_pools": pools}, indent=2))
    elif not status:
        Console(highlight=False).print(f"no stack in {state_dir}")
    else:
        assert stack is not None
        console = Console(highlight=False)
        table = Table(title=f"Inkwell staging ({stack.state_dir})", title_justify="left")
        for column in ("component", "pid", "state"):
            table.add_column(column)
        for name, alive in status.items():
            pid = stack.pids.get(name)
            table.add_row(name, str(pid or "-"), "[green]running[/]" if alive else "[red]stopped[/]")
        console.print(table)
        if pools:
            _print_pools(pools, console)
        if all(status.values()):
            _print_urls(stack, console)
    if not status or not all(status.values()):
        raise typer.Exit(1)


if __name__ == "__main__":
    cli()
