"""Starting the programs Inkwell's tools run on this machine, waiting until they are ready and
stopping them: one implementation for the staging stack, the dashboards' local stack, the
benchmarks and the test helpers, which import nothing of each other's for it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

# What tells wait_until that a program it waits for is still starting: its Popen, or a check of
# its own (a daemon that forks away from us, like nginx).
Alive = subprocess.Popen[Any] | Callable[[], bool]


class LaunchError(RuntimeError):
    """A program is missing, failed, or did not become ready; the message ends with its output."""


def binary(name: str, package: str) -> str:
    """Where `name` is: on PATH, or in /usr/sbin (Debian's daemons, not on a user's PATH)."""
    found = shutil.which(name) or (f"/usr/sbin/{name}" if Path("/usr/sbin", name).exists() else None)
    if found is None:
        raise LaunchError(
            f"{name} not found: apt-get install {package} "
            "(scripts/bootstrap.sh installs it with --test, --bench or --staging)"
        )
    return found


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now, as the kernel chooses it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
) -> str:
    """Runs a command to its end and returns its standard output; on failure the error holds the
    tail of what it printed, which is where the reason is."""
    result = subprocess.run(  # noqa: S603 - our own fixed programs
        list(argv), env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-3000:]
        raise LaunchError(f"{' '.join(argv[:3])} … failed ({result.returncode}):\n{output}")
    return result.stdout


def pinned(argv: Sequence[str], cpus: str | None) -> list[str]:
    """`argv` confined to `cpus` (taskset's list: "0", "1-3"); whatever it starts inherits that."""
    return [binary("taskset", "util-linux"), "-c", cpus, *argv] if cpus else list(argv)


def spawn(
    argv: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    cpus: str | None = None,
    detach: bool = False,
) -> subprocess.Popen[bytes]:
    """Starts `argv` with its output appended to `log`: a file, never a pipe, on which a chatty
    program would block once nobody reads it. `detach` gives it a session of its own, so that it
    outlives this process and its terminal's signals."""
    with log.open("ab") as output:
        return subprocess.Popen(  # noqa: S603 - our own fixed programs
            pinned(argv, cpus),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=detach,
        )


def tail(log: Path | None, size: int = 3000) -> str:
    """The end of a log, for an error message."""
    if log is None:
        return "(no log)"
    try:
        return log.read_text(errors="replace")[-size:]
    except OSError:
        return f"(no log at {log})"


def listening(port: int) -> Callable[[], bool]:
    """A readiness check: something accepts connections on 127.0.0.1:`port`."""

    def ready() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    return ready


def answers(url: str, status: int = 200) -> Callable[[], bool]:
    """A readiness check: GET `url` answers `status`."""
    return lambda: httpx.get(url, timeout=2).status_code == status


def wait_until(
    ready: Callable[[], bool],
    *,
    what: str,
    alive: Alive | None = None,
    log: Path | None = None,
    timeout: float = 60,
) -> None:
    """Polls `ready` (a connection or HTTP error it raises means not yet) until it holds. When
    `alive` says the program has exited, fails at once rather than after `timeout`, with the tail
    of its `log`: the reason it exited is there."""

    def is_alive() -> bool:
        if isinstance(alive, subprocess.Popen):
            return alive.poll() is None
        return alive() if alive is not None else True

    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, httpx.HTTPError):
            if ready():
                return
        if not is_alive():
            raise LaunchError(f"{what} exited while starting:\n{tail(log)}")
        if time.monotonic() > deadline:
            raise LaunchError(f"{what} not ready after {timeout:.0f}s:\n{tail(log)}")
        time.sleep(0.1)


def wait_for_port(port: int, timeout: float = 30) -> None:
    """Waits until something listens on 127.0.0.1:`port` (a program that is not ours to watch)."""
    wait_until(listening(port), what=f"127.0.0.1:{port}", timeout=timeout)


def alive(pid: int, marker: str) -> bool:
    """Whether `pid` still runs the program we started: its command line holds `marker`, for a
    pid a later command only read from a file may belong to another program by now."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # a child of ours that has exited is reaped, not left a zombie
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return bool(cmdline) and marker in cmdline


def stop(
    process: subprocess.Popen[Any] | int,
    *,
    marker: str = "",
    sig: int = signal.SIGTERM,
    timeout: float = 30,
) -> None:
    """Sends `sig` (SIGTERM: the graceful stop our programs handle), waits up to `timeout` for the
    exit, then kills. An int is the pid of a program that need not be our child (the staging
    stack's, started by an earlier command), ours only while its command line holds `marker`."""
    pid = process if isinstance(process, int) else process.pid

    def running() -> bool:
        return alive(pid, marker) if isinstance(process, int) else process.poll() is None

    # The second signal, SIGKILL, cannot be refused; 10 s is for the kernel to tear the process down.
    for signal_now, seconds in ((sig, timeout), (signal.SIGKILL, 10.0)):
        if not running():
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal_now)
        deadline = time.monotonic() + seconds
        while running() and time.monotonic() < deadline:
            time.sleep(0.05)


@contextlib.contextmanager
def running(
    argv: Sequence[str],
    *,
    what: str,
    log: Path,
    ready: Callable[[], bool],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    cpus: str | None = None,
    timeout: float = 60,
    stop_timeout: float = 30,
) -> Iterator[subprocess.Popen[bytes]]:
    """`argv` running (spawned, then waited for until `ready`) for the length of the block, then
    stopped."""
    process = spawn(argv, log=log, env=env, cwd=cwd, cpus=cpus)
    try:
        wait_until(ready, what=what, alive=process, log=log, timeout=timeout)
        yield process
    finally:
        stop(process, timeout=stop_timeout)
