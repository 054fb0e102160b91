"""`make staging-down` returns only once every process of the stack is gone, as `ps` sees it: each
component's program and whatever it started (nginx's workers, say). Up and down run as `make` runs
them, each its own command, so the stack's processes are init's children, not the test's: they
linger as zombies until init collects them, and `down` used to return while `ps` still listed four
of them."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import launch.postgres
from loadtests.staging import ROOT, Stack
from tests.support.server import CHEAP_ARGON2

pytestmark = pytest.mark.slow


def _stack(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "loadtests.staging", *args],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=300,
        env={**os.environ, **CHEAP_ARGON2},
    ).stdout  # fmt: skip


def _processes(sessions: set[int]) -> dict[int, str]:
    """pid: state of every process whose session is one of `sessions`, zombies included."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                if int(fields[3]) in sessions:
                    found[int(entry.name)] = fields[0]
    return found


def test_down_returns_once_no_process_of_the_stack_is_left(tmp_path: Path) -> None:
    state = tmp_path / "staging"
    _stack("up", "--state-dir", str(state), "--no-replica")
    try:
        pids = Stack.load(state).pids
        assert set(pids) == {"inkwell-0", "inkwell-1", "nginx", "prometheus", "redis", "pgbouncer"}
        before = _processes(set(pids.values()))
        assert set(pids.values()) <= set(before)  # each component leads a session of its own
        postmaster = launch.postgres.pid(Path(Stack.load(state).scratch_dir) / "postgres" / "data")
        assert postmaster is not None
        assert "stopped: nginx, inkwell-0, inkwell-1, prometheus, redis, pgbouncer" in _stack(
            "down", "--state-dir", str(state)
        )
        left = {pid: state for pid, state in _processes(set(pids.values())).items() if pid in before}
        assert left == {}, f"down returned with these still listed (pid: state): {left}"
        assert not Path(f"/proc/{postmaster}").exists(), "down returned with PostgreSQL's postmaster listed"
    finally:
        _stack("down", "--state-dir", str(state), "--purge")
