"""launch.pgbouncer: a PgBouncer in transaction mode on 127.0.0.1 only, never running as root, that
logs in with the password or with PostgreSQL's own SCRAM verifier of it, and stops when told."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url

import launch
from launch import pgbouncer as pgb
from launch import postgres as pg
from tests.conftest import PostgresServer
from tests.support.pgbouncer import PgBouncer, pgbouncer


@pytest.fixture(scope="module")
def bouncer(postgres: PostgresServer) -> Iterator[PgBouncer]:
    with pgbouncer(postgres.admin_url) as running:
        yield running


def psql(port: int, user: str, password: str, sql: str) -> str:
    return launch.run(
        [str(pg.bindir() / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", "postgres",
         "-X", "-qAtc", sql],
        env={**os.environ, "PGPASSWORD": password},
    ).strip()  # fmt: skip


def test_the_config_pools_by_transaction_on_loopback_only(tmp_path: Path) -> None:
    config = pgb.config(
        tmp_path, port=6432, server_port=5432, admin="inkwell", pooling=pgb.Pooling(pool_size=7)
    )
    settings = dict(line.split(" = ", 1) for line in config.splitlines() if " = " in line)
    assert settings["pool_mode"] == "transaction"
    assert settings["listen_addr"] == "127.0.0.1"
    assert settings["unix_socket_dir"] == ""
    assert settings["default_pool_size"] == "7"
    assert settings["auth_type"] == "scram-sha-256"
    assert ("user" in settings) == (os.geteuid() == 0)


def test_it_runs_as_the_postgres_user_exactly_when_we_are_root(bouncer: PgBouncer) -> None:
    assert bouncer.process is not None
    uid = next(
        int(line.split()[1])
        for line in Path(f"/proc/{bouncer.process.pid}/status").read_text().splitlines()
        if line.startswith("Uid:")
    )
    assert uid != 0
    if os.geteuid() == 0:
        assert uid == pwd.getpwnam("postgres").pw_uid


def test_a_client_reaches_postgresql_through_it_and_the_console_shows_the_pool(bouncer: PgBouncer) -> None:
    assert psql(bouncer.port, bouncer.user, bouncer.password, "SELECT 40 + 2") == "42"
    pools = {row["database"]: row for row in bouncer.show("POOLS")}
    assert pools["postgres"]["pool_mode"] == "transaction"
    with pytest.raises(launch.LaunchError, match="SASL authentication failed"):
        psql(bouncer.port, bouncer.user, "not-the-password", "SELECT 1")


def test_it_logs_in_with_postgresqls_scram_verifier_instead_of_the_password(postgres: PostgresServer) -> None:
    server = make_url(postgres.admin_url)
    assert server.username
    assert server.password
    assert server.port
    verifier = pgb.verifier(server.port, user=server.username, password=server.password)
    assert verifier.startswith("SCRAM-SHA-256$")
    # In /tmp: pytest's own temp dirs are private to root, and PgBouncer runs as postgres then.
    root, port = Path(tempfile.mkdtemp(prefix="inkwell-pgbouncer-")), launch.free_port()
    try:
        config = pgb.write(root, port=port, server_port=server.port, users={server.username: verifier})
        assert (root / "userlist.txt").read_text() == f'"{server.username}" "{verifier}"\n'
        process = pgb.start(config)
        try:
            assert psql(port, server.username, server.password, "SELECT 'through'") == "through"
        finally:
            pgb.stop(process, config)
        assert process.poll() is not None
    finally:
        shutil.rmtree(root, ignore_errors=True)
