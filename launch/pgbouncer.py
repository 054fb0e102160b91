"""PgBouncer (Debian's package) in front of a PostgreSQL, as the tests, the benchmarks and the
staging stack run it: transaction pooling on 127.0.0.1, with its configuration, auth file, log and
pid file in a directory of its own.

PgBouncer refuses to run as root: as root its configuration says `user = postgres`, and it drops to
that user once it has read it (launch.postgres's cluster runs as the same user).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import launch
from launch import binary, listening, spawn, wait_until
from launch import postgres as pg

CONFIG = "pgbouncer.ini"


@dataclass(frozen=True)
class Pooling:
    """How many clients PgBouncer takes, how many server connections it opens for them, and how long
    a client waits.

    `pool_size` (default_pool_size) is the server connections per database and user: what
    PostgreSQL sees, however many clients there are. `max_client_conn` is the clients it accepts in
    all (every process's pool with its overflow). A transaction that finds every server connection
    busy waits up to `query_wait_timeout` seconds for one, then its client is disconnected. After a
    failed login to PostgreSQL, PgBouncer fails clients at once for `server_login_retry` seconds
    before it tries again: how long it takes to notice the database is back.

    `spread` hands each transaction the server connection idle the longest (server_round_robin),
    where PgBouncer would give it the one released last: the tests' way to make even one client's
    consecutive transactions land on different server connections, as many clients' do under load.
    """

    pool_size: int = 20
    max_client_conn: int = 1000
    query_wait_timeout: int = 30
    server_login_retry: int = 15
    spread: bool = False


def config(
    root: Path,
    *,
    port: int,
    server_port: int,
    admin: str,
    pooling: Pooling = Pooling(),
    server_host: str = "127.0.0.1",
) -> str:
    """pgbouncer.ini: on 127.0.0.1:`port` in front of every database of the PostgreSQL on
    `server_host`:`server_port`, in transaction mode; the users of the auth file in `root` may log
    in, and `admin` may also use the console (`psql -d pgbouncer -c 'SHOW POOLS'`)."""
    settings: dict[str, object] = {
        "listen_addr": "127.0.0.1",
        "listen_port": port,
        # No Unix socket: two poolers on one machine would both want /tmp/.s.PGSQL.6432.
        "unix_socket_dir": "",
        "auth_type": "scram-sha-256",
        "auth_file": root / "userlist.txt",
        "admin_users": admin,
        "pool_mode": "transaction",
        "default_pool_size": pooling.pool_size,
        "max_client_conn": pooling.max_client_conn,
        "query_wait_timeout": pooling.query_wait_timeout,
        "server_login_retry": pooling.server_login_retry,
        "server_round_robin": int(pooling.spread),
        # PgBouncer's default, run in session mode only: a transaction-mode client leaves no session
        # state behind (the service sets none), so nothing is reset between transactions.
        "server_reset_query": "DISCARD ALL",
        # Sent by JDBC and psycopg-based tools; not by asyncpg. Any other startup parameter (`jit`,
        # `statement_timeout`) is refused: set those on the role instead (docs/connections.md).
        "ignore_startup_parameters": "extra_float_digits",
        "logfile": root / "pgbouncer.log",
        "pidfile": root / "pgbouncer.pid",
        # A line per connection under load would bury the warnings.
        "log_connections": 0,
        "log_disconnections": 0,
    }
    system_user = pg.owner()
    if system_user:
        settings["user"] = system_user
    lines = "\n".join(f"{key} = {value}" for key, value in settings.items())
    return f"[databases]\n* = host={server_host} port={server_port}\n\n[pgbouncer]\n{lines}\n"


def write(
    root: Path,
    *,
    port: int,
    server_port: int,
    users: dict[str, str],
    pooling: Pooling = Pooling(),
    server_host: str = "127.0.0.1",
) -> Path:
    """Writes pgbouncer.ini and its auth file into `root` (created, and made the pooler's own) and
    returns the configuration's path, which start() takes. `users` maps each login to what the auth
    file holds for it: its password, or its SCRAM verifier as PostgreSQL's pg_authid stores it (then
    PgBouncer keeps no password at all, and logs in to PostgreSQL with the client's own proof). The
    first user is the console's admin."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / CONFIG
    path.write_text(
        config(
            root,
            port=port,
            server_port=server_port,
            admin=next(iter(users)),
            pooling=pooling,
            server_host=server_host,
        )
    )
    auth = root / "userlist.txt"
    auth.touch(mode=0o600)
    auth.chmod(0o600)
    auth.write_text("".join(f'"{user}" "{secret}"\n' for user, secret in users.items()))
    system_user = pg.owner()
    if system_user:
        for each in (root, path, auth):
            shutil.chown(each, system_user)
    return path


def port_of(config_path: Path) -> int:
    for line in config_path.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "listen_port":
            return int(value)
    raise ValueError(f"no listen_port in {config_path}")


def start(config_path: Path, *, detach: bool = False, timeout: float = 30) -> subprocess.Popen[bytes]:
    """Starts PgBouncer on `config_path` (in its own session with `detach`, to outlive us) and
    returns once it accepts connections. What it says goes to pgbouncer.log beside the config."""
    root = config_path.parent
    process = spawn(
        [binary("pgbouncer", "pgbouncer"), str(config_path)], log=root / "pgbouncer.out", detach=detach
    )
    try:
        wait_until(
            listening(port_of(config_path)),
            what="pgbouncer",
            alive=process,
            log=root / "pgbouncer.log",
            timeout=timeout,
        )
    except BaseException:
        launch.stop(process, timeout=10)
        raise
    return process


def stop(process: subprocess.Popen[bytes] | int, config_path: Path) -> None:
    """Stops PgBouncer at once (SIGTERM: its immediate shutdown, clients disconnected). An int is the
    pid of one an earlier command started, stopped only while it still runs `config_path`."""
    launch.stop(process, marker=str(config_path), timeout=10)


def verifier(port: int, *, user: str, password: str, database: str = "postgres") -> str:
    """`user`'s SCRAM verifier as the PostgreSQL on `port` stores it (pg_authid: a superuser may read
    it), for an auth file that holds no password."""
    return launch.run(
        [str(pg.bindir() / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", database,
         "-X", "-qAtc", "SELECT rolpassword FROM pg_authid WHERE rolname = current_user"],
        env={**os.environ, "PGPASSWORD": password},
    ).strip()  # fmt: skip


def console(port: int, *, user: str, password: str, command: str) -> list[dict[str, str]]:
    """The rows of an admin console command (`SHOW POOLS`, `SHOW STATS`) of the PgBouncer on `port`."""
    output = launch.run(
        [str(pg.bindir() / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", "pgbouncer",
         "-X", "--csv", "-c", command],
        env={**os.environ, "PGPASSWORD": password},
        timeout=10,
    )  # fmt: skip
    return list(csv.DictReader(output.splitlines()))
