"""Live listeners under load, through the staging stack (nginx proxying /api/live with Upgrade, two
service processes fanning out through Redis): a distributed locust run (a master and two workers) of
listeners on the popular articles while writers comment loses no comment, reports each delivery's
lag as "WS comment.created", and has the gate in its verdict JSON, counted over the workers; and when
one service process drains (SIGTERM: its sockets close with 1012), its listeners reconnect with
`since` and still lose nothing."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from launch import free_port
from loadtests.staging import ROOT, Stack, staging_stack
from tests.loadtests.workers import locust_env, locust_workers
from tests.support.server import CHEAP_ARGON2

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with staging_stack(tmp_path_factory.mktemp("staging"), services=2, env=CHEAP_ARGON2) as stack:
        yield stack


def test_listeners_receive_every_comment_the_writers_post_in_a_distributed_run(
    stack: Stack, tmp_path: Path
) -> None:
    port = free_port()
    env = locust_env()
    results = tmp_path / "live"
    with locust_workers(port, wait=90):
        run = subprocess.run(
            [
                sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--headless",
                "--host", stack.url, "--csv", str(results), "--only-summary",
                "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                "--expect-workers", "2", "--expect-workers-max-wait", "60",
                # Only the two classes: four listeners and four writers, both on each worker.
                "--shape", "steady", "-u", "8", "-r", "8", "-t", "25s",
                # Above the listeners' settle limit (loadtests/mix.py), so none is killed counting.
                "--stop-timeout", "20s",
                "--gate-p95-ms", "5000", "--gate-p99-ms", "5000", "--gate-max-failure-ratio", "0",
                "--gate-min-rps", "1",
                "LiveListener", "Writer",
            ],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-6000:]
    assert "SLO verdict: PASS" in run.stdout

    report = json.loads((tmp_path / "live_slo.json").read_text())
    tally = report["live"]
    assert tally["listeners"] == 4, tally
    assert tally["expected"] > 0, tally  # the writers did comment on the articles listened to
    assert tally["lost"] == 0, tally
    assert tally["delivered"] + tally["resynced"] == tally["expected"], tally
    assert tally["duplicates"] == 0, tally
    gate = next(check for check in report["checks"] if check["gate"] == "lost events")
    assert (gate["group"], gate["observed"], gate["limit"], gate["passed"]) == ("live listeners", 0, 0, True)
    lag = [c for c in report["checks"] if c["group"] == "WS comment.created"]
    assert {c["gate"] for c in lag} == {"p95 ms", "p99 ms"}

    with (tmp_path / "live_stats.csv").open() as stats:
        rows = {(row["Type"], row["Name"]): row for row in csv.DictReader(stats)}
    deliveries = rows["WS", "comment.created"]
    # Every delivery the ledger counted was reported with its lag (and some the listeners got of
    # comments sent just before they subscribed, which no one owed them).
    assert int(deliveries["Request Count"]) >= tally["delivered"] > 0
    assert int(deliveries["Failure Count"]) == 0
    assert int(rows["WS", "connect"]["Request Count"]) >= 4


def stats_row(results: Path, kind: str, name: str) -> int:
    """Requests of one group in the CSV locust rewrites every second during a run (0 before it has)."""
    path = results.with_name(f"{results.name}_stats.csv")
    try:
        with path.open() as stats:
            rows = list(csv.DictReader(stats))
    except (FileNotFoundError, csv.Error):
        return 0
    return sum(int(row["Request Count"]) for row in rows if (row["Type"], row["Name"]) == (kind, name))


def test_listeners_of_a_draining_process_reconnect_with_since_and_lose_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    # Last in this module: it stops one of the two service processes.
    env = locust_env()
    results = tmp_path / "drain"
    run = subprocess.Popen(
        [
            sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--headless",
            "--host", stack.url, "--csv", str(results), "--only-summary",
            "--shape", "steady", "-u", "8", "-r", "8", "-t", "40s", "--stop-timeout", "20s",
            # Writes in flight on the process as it exits may fail; the live gate is what is judged.
            "--gate-p95-ms", "5000", "--gate-p99-ms", "5000", "--gate-max-failure-ratio", "0.2",
            "--gate-min-rps", "1",
            "LiveListener", "Writer",
        ],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # Comments are reaching the listeners (so they have event ids to resume from): stop one
        # process, as Kubernetes does a pod. Its sockets close with 1012 and reconnect through nginx.
        deadline = time.monotonic() + 120
        while stats_row(results, "WS", "comment.created") < 3:
            assert run.poll() is None, "locust ended before a comment reached a listener"
            assert time.monotonic() < deadline, "no comment reached a listener"
            time.sleep(0.5)
        os.kill(stack.pids["inkwell-0"], signal.SIGTERM)
        stdout, stderr = run.communicate(timeout=240)
    finally:
        run.kill()
    assert run.returncode == 0, stdout[-6000:] + stderr[-6000:]
    tally = json.loads((tmp_path / "drain_slo.json").read_text())["live"]
    assert tally["reconnects"] >= 1, tally  # nginx balanced some of the four sockets onto inkwell-0
    assert tally["lost"] == 0, tally
    assert tally["expected"] > 0, tally
