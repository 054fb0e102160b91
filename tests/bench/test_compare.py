"""The benchmarks' instrument: the CPU time of a server's whole process tree, wrk's report, the
rounds' rotated order, the ratios paired round by round, and the copies --same and --baseline add."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

import launch
from bench import cputime
from bench.compare import (
    Endpoint,
    Options,
    Ratio,
    Sample,
    Variant,
    paired,
    quartiles,
    schedule,
    with_checks,
    with_copies,
)
from bench.stack import cpu_set, parse_wrk
from tests.support.server import migrate, server_env

WRK_OUTPUT = """Running 2s test @ http://127.0.0.1:8000/api/tags
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  310.00us   9.10ms   91.00%
    Req/Sec     5.31k   210.00     5.60k    80.00%
  Latency Distribution
     50%  812.00us
     75%    1.60ms
     90%    1.90ms
     99%    4.31ms
  10567 requests in 2.00s, 3.10MB read
Requests/sec:   5281.62
Transfer/sec:      1.55MB
"""

# A parent that, once told to, spends 0.3 s of CPU in a thread that then ends, 0.3 s in one that
# lives on, and starts a child that spends 0.3 s more: counted by CPU time, not by the clock, so a
# busy machine makes it slower but not cheaper.
SPENDER = """
import os, subprocess, sys, threading, time
go, done = sys.argv[1], sys.argv[2]
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.01)
spun = threading.Semaphore(0)
def spin(then=None):
    start = time.thread_time()
    while time.thread_time() - start < 0.3:
        pass
    spun.release()
    if then is not None:
        then.wait()
ended, lives_on = threading.Thread(target=spin), threading.Thread(target=spin, args=(threading.Event(),))
ended.start()
lives_on.start()
child = subprocess.Popen([sys.executable, "-c",
    "import time\\nwhile time.process_time() < 0.3: pass\\nopen(%r, 'w').close()\\ntime.sleep(60)" % done])
spun.acquire()
spun.acquire()
ended.join()
print("spun", flush=True)
time.sleep(60)
"""


def test_wrk_report_gives_requests_throughput_and_latencies() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert (result.requests, result.rps, result.p50_ms, result.p99_ms) == (10567, 5281.62, 0.812, 4.31)


@pytest.mark.parametrize(
    "trouble",
    ["  Non-2xx or 3xx responses: 12\n", "  Socket errors: connect 0, read 3, write 0, timeout 0\n"],
)
def test_a_wrk_run_with_failed_requests_gives_no_numbers(trouble: str) -> None:
    with pytest.raises(RuntimeError, match="wrk saw failures"):
        parse_wrk(WRK_OUTPUT + trouble)


def test_the_cpu_time_of_a_process_tree_counts_its_threads_and_its_children(tmp_path: Path) -> None:
    log, go, done = tmp_path / "spender.log", tmp_path / "go", tmp_path / "done"
    process = launch.spawn([sys.executable, "-c", SPENDER, str(go), str(done)], log=log)
    try:
        launch.wait_until(lambda: "ready" in log.read_text(), what="spender", alive=process, log=log)
        before = cputime.snapshot(process.pid)
        go.touch()
        launch.wait_until(
            lambda: done.exists() and "spun" in log.read_text(), what="spender", alive=process, log=log
        )
        after = cputime.snapshot(process.pid)
        assert len(cputime.descendants(process.pid)) == 1
    finally:
        launch.stop(process, timeout=5)
        for pid in cputime.descendants(process.pid):
            launch.stop(pid, marker="process_time", timeout=5)
    # The live thread's 0.3 s and the child's (its interpreter's start included), and a little more.
    seconds = cputime.spent(before, after) / 1e9
    assert 0.6 <= seconds < 0.8, seconds
    # The processes' stat counts the ended thread's 0.3 s too, each process a tick (10 ms) short at most.
    by_stat = cputime.spent_by_stat(before, after) / 1e9
    assert by_stat - seconds == pytest.approx(0.3, abs=0.03)


def test_a_thread_that_ended_between_snapshots_is_not_subtracted() -> None:
    before = cputime.Snapshot({(10, 10): 5_000, (10, 11): 9_000_000})
    after = cputime.Snapshot({(10, 10): 7_000, (10, 12): 1_000})  # 11 retired, 12 new
    assert cputime.spent(before, after) == 2_000 + 1_000


def test_every_variant_goes_first_once_in_as_many_rounds_and_the_endpoints_rotate_too() -> None:
    variants = {"list": ["off", "on", "on@before"], "article": ["off", "on", "on@before"]}
    rounds = [schedule(["list", "article"], variants, number) for number in range(3)]
    assert rounds[0] == [(e, v) for e in ["list", "article"] for v in ["off", "on", "on@before"]]
    assert rounds[1][:3] == [("article", "on"), ("article", "on@before"), ("article", "off")]
    firsts = {order[0][1] for order in rounds}
    assert firsts == {"off", "on", "on@before"}
    assert all(sorted(order) == sorted(rounds[0]) for order in rounds)


def test_ratios_are_paired_round_by_round_cpu_as_requests_per_cpu_second() -> None:
    def sample(rps: float, cpu_us: float) -> Sample:
        return Sample(requests=1000, rps=rps, cpu_ns=int(cpu_us * 1000 * 1000), p50_ms=1, p99_ms=2)

    samples = {
        ("list", "off"): [sample(1000, 500), sample(500, 500)],
        ("list", "on"): [sample(900, 625), sample(450, 625)],
    }
    by_cpu, by_rps = paired(samples, Ratio("list", ("list", "on"), ("list", "off")))
    assert by_cpu == [0.8, 0.8]
    assert by_rps == [0.9, 0.9]
    assert quartiles([1, 2, 3, 4, 5]) == (2, 3, 4)


def test_same_and_baseline_add_twins_runs_from_the_other_tree_and_the_ratios_that_check_them(
    tmp_path: Path,
) -> None:
    opts = Options(
        rounds=1, seconds=1, warmup=0, connections=1, workers=1, same=True, baseline=tmp_path, only=()
    )
    variants = [Variant("off", {}), Variant("on", {})]
    copies = with_copies(variants, opts)
    assert [v.name for v in copies] == [
        "off",
        "on",
        "off@before",
        "on@before",
        "off#2",
        "on#2",
        "off@before#2",
        "on@before#2",
    ]
    assert {v.name: v.tree for v in copies}["on@before#2"] == tmp_path
    assert {v.family for v in copies} == {"off", "on"}
    endpoints = [Endpoint("list", "/")]
    ratios = with_checks([Ratio("o-list", ("list", "on"), ("list", "off"))], variants, endpoints, opts, "o-")
    assert [(r.label, r.expression, r.kind) for r in ratios] == [
        ("o-list", "on/off", ""),
        ("o-list@before", "on@before/off@before", ""),
        ("o-list", "off/off@before", "after/before"),
        ("o-list", "on/on@before", "after/before"),
        ("o-list", "off#2/off", "A/A"),
        ("o-list", "on#2/on", "A/A"),
        ("o-list", "off@before#2/off@before", "A/A"),
        ("o-list", "on@before#2/on@before", "A/A"),
    ]


def test_a_variant_runs_inkwell_serve_an_app_factory_through_bench_serve_or_its_own_command() -> None:
    assert Variant("a", {}).argv(port=1, workers=2)[2:] == [
        "service",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "1",
        "--workers",
        "2",
    ]
    assert Variant("b", {}, app="m:f").argv(port=1, workers=2)[2:6] == [
        "bench.serve",
        "--app",
        "m:f",
        "--port",
    ]
    assert Variant("c", {}, command=("srv",)).argv(port=1, workers=1) == [
        "srv",
        "--port",
        "1",
        "--workers",
        "1",
    ]
    assert cpu_set("0,2-3") == {0, 2, 3}


def test_bench_serve_serves_an_app_factory_as_inkwell_serve_does(tmp_path: Path) -> None:
    env = server_env()
    migrate(env)
    port = launch.free_port()
    argv = [sys.executable, "-m", "bench.serve", "--app", "service.main:create_app", "--port", str(port)]
    with launch.running(
        argv, what="bench.serve", log=tmp_path / "serve.log", ready=launch.listening(port), env=env
    ):
        assert httpx.get(f"http://127.0.0.1:{port}/api/tags", timeout=30).json() == {"tags": []}
    assert '"Application startup complete."' in (tmp_path / "serve.log").read_text()
