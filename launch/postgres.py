"""A throwaway PostgreSQL cluster from Debian's server binaries, as the test suite, the benchmarks
and the staging stack run it: a data directory of its own, 127.0.0.1 only, durability off.

PostgreSQL refuses to run as root, and CI runs as root: the cluster then belongs to the `postgres`
system user (created by Debian's package) and its programs run through `runuser`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from launch import LaunchError, alive, run, tail


def bindir() -> Path:
    """The newest of Debian's /usr/lib/postgresql/<version>/bin, else wherever pg_ctl is on PATH."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise LaunchError(
        "PostgreSQL server binaries not found: apt-get install postgresql "
        "(scripts/bootstrap.sh installs it with --test, --bench or --staging)"
    )


def owner() -> str | None:
    """Who the cluster's programs run as: ourselves, or `postgres` when we are root."""
    return "postgres" if os.geteuid() == 0 else None


def as_owner(argv: Sequence[str]) -> list[str]:
    user = owner()
    return ["runuser", "-u", user, "--", *argv] if user else list(argv)


# Connections for two servers' pools with their overflow, and more.
MAX_CONNECTIONS = 200


def start(root: Path, *, port: int, user: str, password: str, max_connections: int = MAX_CONNECTIONS) -> Path:
    """Creates a cluster in <root>/data whose superuser `user` logs in with `password` (unless one is
    there already: a stopped one starts again), starts it on `port` (its socket in `root`, its log
    in <root>/postgres.log) accepting up to `max_connections` sessions, and returns once it accepts
    connections. Returns the data directory, which stop() takes."""
    programs, datadir = bindir(), root / "data"
    if not (datadir / "PG_VERSION").exists():
        _create(programs, root, datadir, user=user, password=password)
    serve(root, datadir, port=port, max_connections=max_connections)
    return datadir


def serve(root: Path, datadir: Path, *, port: int, max_connections: int, settings: str = "") -> None:
    """Starts the cluster in `datadir` as start() does (launch.replica's too), with `settings`
    (`-c name=value ...`) added, and returns once it accepts connections."""
    # Throwaway data: durability off.
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off -c synchronous_commit=off "
        f"-c full_page_writes=off -c max_connections={max_connections} {settings}"
    ).strip()
    log = root / "postgres.log"
    try:
        run(
            as_owner(
                [str(bindir() / "pg_ctl"), "-D", str(datadir), "-o", options, "-l", str(log),
                 "-w", "-t", "60", "start"]
            )
        )  # fmt: skip
    except LaunchError as error:
        raise LaunchError(f"{error}\n{tail(log)}") from None


def _create(programs: Path, root: Path, datadir: Path, *, user: str, password: str) -> None:
    pwfile = root / "pwfile"
    pwfile.write_text(password)
    system_user = owner()
    if system_user:
        shutil.chown(root, system_user)
        shutil.chown(pwfile, system_user)
    try:
        run(
            as_owner(
                [str(programs / "initdb"), "-D", str(datadir), "-U", user, f"--pwfile={pwfile}",
                 "-A", "scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]
            )
        )  # fmt: skip
    finally:
        pwfile.unlink()


def pid(datadir: Path) -> int | None:
    """The postmaster's pid while the cluster in `datadir` runs (its backends are its children)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        postmaster = int((datadir / "postmaster.pid").read_text().splitlines()[0])
        if alive(postmaster, "postgres"):
            return postmaster
    return None


def stop(datadir: Path, *, mode: str = "fast") -> None:
    """Stops the cluster in `datadir` if it runs: `fast` ends the sessions cleanly, `immediate`
    does not bother, for data that is thrown away next."""
    if (datadir / "postmaster.pid").exists():
        subprocess.run(  # noqa: S603 - our own fixed programs
            as_owner([str(bindir() / "pg_ctl"), "-D", str(datadir), "-m", mode, "-w", "stop"]),
            capture_output=True,
            check=False,
            timeout=60,
        )
