"""The launcher: a program that dies while starting fails the wait at once with what it printed,
a stop ends even a program that ignores SIGTERM, and a pid that is no longer ours is left alone."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

import launch
import launch.postgres
import launch.prometheus
from dashboards.generate import FILES

PYTHON = sys.executable


def test_a_program_that_exits_while_starting_fails_the_wait_at_once_with_its_output(tmp_path: Path) -> None:
    log = tmp_path / "dying.log"
    process = launch.spawn(
        [PYTHON, "-c", "print('no config here', flush=True); raise SystemExit(3)"], log=log
    )
    started = time.monotonic()
    with pytest.raises(launch.LaunchError, match="no config here") as raised:
        launch.wait_until(
            launch.listening(launch.free_port()), what="dying", alive=process, log=log, timeout=60
        )
    assert time.monotonic() - started < 10
    assert "dying exited while starting" in str(raised.value)


def test_a_program_that_never_gets_ready_fails_after_the_timeout(tmp_path: Path) -> None:
    log = tmp_path / "sleeper.log"
    process = launch.spawn([PYTHON, "-c", "import time; time.sleep(60)"], log=log)
    try:
        with pytest.raises(launch.LaunchError, match="sleeper not ready after 1s"):
            launch.wait_until(lambda: False, what="sleeper", alive=process, log=log, timeout=1)
    finally:
        launch.stop(process)
    assert process.returncode == -signal.SIGTERM


def test_running_yields_once_ready_and_stops_the_program_afterwards(tmp_path: Path) -> None:
    port = launch.free_port()
    argv = [PYTHON, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with launch.running(
        argv, what="http.server", log=tmp_path / "http.log", ready=launch.answers(f"http://127.0.0.1:{port}/")
    ) as process:
        assert process.poll() is None
    assert process.returncode is not None


def test_stop_kills_a_program_that_ignores_sigterm(tmp_path: Path) -> None:
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    log = tmp_path / "stubborn.log"
    process = launch.spawn([PYTHON, "-c", stubborn], log=log)
    launch.wait_until(lambda: "up" in log.read_text(), what="stubborn", alive=process, log=log)
    started = time.monotonic()
    launch.stop(process, timeout=1)
    assert process.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 10


def test_a_pid_whose_command_line_lacks_the_marker_is_not_ours_to_stop(tmp_path: Path) -> None:
    process = launch.spawn([PYTHON, "-c", "import time; time.sleep(60)"], log=tmp_path / "other.log")
    try:
        assert not launch.alive(process.pid, "redis-server 127.0.0.1:6379")
        launch.stop(process.pid, marker="redis-server 127.0.0.1:6379", timeout=1)
        time.sleep(0.2)
        assert process.poll() is None
        assert launch.alive(process.pid, "time.sleep(60)")
        launch.stop(process.pid, marker="time.sleep(60)", timeout=10)
        assert not launch.alive(process.pid, "time.sleep(60)")
    finally:
        process.kill()
        process.wait()


def test_spawn_pins_the_program_and_what_it_starts_to_the_cores_given(tmp_path: Path) -> None:
    core = min(os.sched_getaffinity(0))
    log = tmp_path / "pinned.log"
    child = "import os, subprocess, sys; print(sorted(os.sched_getaffinity(0)), flush=True); subprocess.run([sys.executable, '-c', 'import os; print(sorted(os.sched_getaffinity(0)))'])"
    process = launch.spawn([PYTHON, "-c", child], log=log, cpus=str(core))
    assert process.wait(timeout=30) == 0
    assert log.read_text().split("\n")[:2] == [f"[{core}]", f"[{core}]"]


def test_a_missing_program_names_the_debian_package_that_has_it() -> None:
    with pytest.raises(launch.LaunchError, match="apt-get install inkwell-nonesuch-package"):
        launch.binary("inkwell-nonesuch", "inkwell-nonesuch-package")


def test_run_fails_with_the_tail_of_what_the_command_printed() -> None:
    with pytest.raises(launch.LaunchError, match=r"failed \(4\):\nthe reason"):
        launch.run([PYTHON, "-c", "import sys; print('the reason', file=sys.stderr); sys.exit(4)"])
    assert launch.run([PYTHON, "-c", "print('out')"]) == "out\n"


def test_postgres_programs_run_as_the_postgres_user_exactly_when_we_are_root() -> None:
    argv = launch.postgres.as_owner(["pg_ctl", "status"])
    if os.geteuid() == 0:
        assert argv == ["runuser", "-u", "postgres", "--", "pg_ctl", "status"]
    else:
        assert argv == ["pg_ctl", "status"]


def test_the_rules_a_local_prometheus_evaluates_are_the_generated_ones_at_the_global_interval(
    tmp_path: Path,
) -> None:
    assert launch.prometheus.RULES == FILES / "rules"
    written = launch.prometheus.local_rule_files(tmp_path)
    assert [path.name for path in written] == sorted(path.name for path in (FILES / "rules").glob("*.yaml"))
    assert all("interval:" not in path.read_text() for path in written)
    assert any("interval:" in path.read_text() for path in (FILES / "rules").glob("*.yaml"))


def test_the_free_port_is_one_nothing_listens_on() -> None:
    port = launch.free_port()
    with pytest.raises(ConnectionRefusedError):
        launch.listening(port)()
