"""SLO gates: limits from loadtests/slo.toml and the command line, a verdict that fails exactly when a
limit is crossed, and percentiles that agree with locust's own."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from rich.console import Console

from loadtests.gates import (
    DEFAULT_SLO_FILE,
    LIVE,
    TOTAL,
    Limits,
    LiveCount,
    Observation,
    SloConfig,
    evaluate,
    observations,
    print_verdict,
    write_report,
)
from loadtests.percentiles import percentile

CONFIG = SloConfig(
    total=Limits(p95_ms=100, p99_ms=250, max_failure_ratio=0.01),
    min_rps=5,
    every_group=Limits(p95_ms=150, p99_ms=300),
    groups={"POST /api/users": Limits(p95_ms=600)},
    min_samples=20,
)
HEALTHY = Observation(TOTAL, requests=1000, failures=0, p95_ms=80, p99_ms=200, rps=10)


def group(name: str, *, requests: int = 100, p95: float = 50, p99: float = 90) -> Observation:
    return Observation(name, requests=requests, failures=0, p95_ms=p95, p99_ms=p99, rps=1)


def failed(verdict: object) -> list[tuple[str, str]]:
    return [(check.group, check.gate) for check in verdict.failed]  # type: ignore[attr-defined]


def test_the_shipped_slo_file_loads_with_the_services_slo() -> None:
    config = SloConfig.load(DEFAULT_SLO_FILE)
    # dashboards/config.py: 99% of requests within 250 ms, 99.9% served.
    assert config.total.p99_ms == 250
    assert config.total.max_failure_ratio == 0.001
    assert config.min_rps is not None
    assert config.for_group("POST /api/users").p99_ms == 1000
    assert config.for_group("GET /api/tags") == config.every_group
    assert "POST /api/users" in config.latency_excludes
    # The live listeners: no lost event, and a delivery lag under the service's alert (2.5 s).
    assert config.max_lost_events == 0
    assert config.for_group("WS comment.created").p99_ms == 1000
    assert config.not_requests == ("WS comment.created",)  # frames received, not requests


def test_an_unknown_key_in_the_slo_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "slo.toml"
    path.write_text("[every_group]\np95 = 100\n")
    with pytest.raises(ValueError, match="unknown keys"):
        SloConfig.load(path)


def test_a_healthy_run_passes_every_gate() -> None:
    verdict = evaluate(CONFIG, HEALTHY, [group("GET /api/tags"), group("POST /api/users", p95=500)])
    assert verdict.passed
    assert {(check.group, check.gate) for check in verdict.checks} >= {
        (TOTAL, "min rps"),
        (TOTAL, "failure ratio"),
        (TOTAL, "p95 ms"),
        (TOTAL, "p99 ms"),
        ("GET /api/tags", "p95 ms"),
        ("GET /api/tags", "p99 ms"),
        ("POST /api/users", "p95 ms"),
    }


@pytest.mark.parametrize(
    ("total", "groups", "expected"),
    [
        (Observation(TOTAL, 1000, 11, 80, 200, 10), [], [(TOTAL, "failure ratio")]),
        (Observation(TOTAL, 1000, 0, 80, 200, 4.9), [], [(TOTAL, "min rps")]),
        (Observation(TOTAL, 1000, 0, 101, 251, 10), [], [(TOTAL, "p95 ms"), (TOTAL, "p99 ms")]),
        (HEALTHY, [group("GET /api/tags", p99=301)], [("GET /api/tags", "p99 ms")]),
        (HEALTHY, [group("POST /api/users", p95=601)], [("POST /api/users", "p95 ms")]),
    ],
)
def test_crossing_one_limit_fails_that_gate_only(
    total: Observation, groups: list[Observation], expected: list[tuple[str, str]]
) -> None:
    verdict = evaluate(CONFIG, total, groups)
    assert not verdict.passed
    assert failed(verdict) == expected


def test_a_limit_is_inclusive() -> None:
    exact = Observation(TOTAL, requests=1000, failures=10, p95_ms=100, p99_ms=250, rps=5)
    assert evaluate(CONFIG, exact, [group("GET /api/tags", p95=150, p99=300)]).passed


def test_a_group_with_too_few_requests_gets_no_latency_verdict_but_is_shown() -> None:
    verdict = evaluate(CONFIG, HEALTHY, [group("DELETE /api/articles/[slug]", requests=19, p99=9000)])
    assert verdict.passed
    skipped = [check for check in verdict.checks if check.group == "DELETE /api/articles/[slug]"]
    assert [check.passed for check in skipped] == [None, None]
    assert "19 requests" in skipped[0].note


def test_a_run_without_requests_fails() -> None:
    verdict = evaluate(CONFIG, Observation(TOTAL, 0, 0, 0, 0, 0), [])
    assert failed(verdict) == [(TOTAL, "min rps"), (TOTAL, "failure ratio")]


def test_command_line_limits_replace_the_files_everywhere() -> None:
    config = CONFIG.overridden(p99_ms=5000, max_failure_ratio=0, min_rps=1)
    assert config.total == Limits(p95_ms=100, p99_ms=5000, max_failure_ratio=0)
    assert config.min_rps == 1
    assert config.for_group("GET /api/tags").p99_ms == 5000
    assert config.for_group("POST /api/users") == Limits(p95_ms=600, p99_ms=5000)
    assert CONFIG.overridden() == CONFIG


def test_a_failure_ratio_of_zero_fails_on_a_single_failure() -> None:
    config = CONFIG.overridden(max_failure_ratio=0)
    one = Observation(TOTAL, requests=100_000, failures=1, p95_ms=1, p99_ms=1, rps=100)
    assert failed(evaluate(config, one, [])) == [(TOTAL, "failure ratio")]


@dataclass
class Entry:
    """The parts of locust's StatsEntry the gates read."""

    method: str
    name: str
    response_times: dict[int, int]
    num_failures: int = 0
    total_rps: float = 1.0
    num_requests: int = field(init=False)

    def __post_init__(self) -> None:
        self.num_requests = sum(self.response_times.values())

    def get_response_time_percentile(self, share: float) -> float:
        return percentile(self.response_times, share)


@dataclass
class Stats:
    entries: dict[tuple[str, str], Entry]
    total: Entry


def test_the_totals_latency_leaves_out_the_excluded_groups_but_not_their_requests() -> None:
    tags = Entry("GET", "/api/tags", {10: 95, 20: 5})
    register = Entry("POST", "/api/users", {900: 5}, num_failures=1)
    stats = Stats(
        {("/api/tags", "GET"): tags, ("/api/users", "POST"): register}, Entry("", "", {10: 95, 20: 5, 900: 5})
    )
    total, groups = observations(stats, ["POST /api/users"])
    assert (total.requests, total.failures) == (105, 0)  # the total entry's own counts
    assert total.p99_ms == 20  # without registration; with it, 900
    assert observations(stats)[0].p99_ms == 900
    assert {g.group: g.p99_ms for g in groups} == {"GET /api/tags": 20, "POST /api/users": 900}


def test_frames_received_are_left_out_of_the_totals_requests_rate_failures_and_latency() -> None:
    tags = Entry("GET", "/api/tags", {10: 90})
    frames = Entry("WS", "comment.created", {700: 30}, num_failures=3)
    total_entry = Entry("", "", {10: 90, 700: 30}, num_failures=3, total_rps=12.0)
    stats = Stats({("/api/tags", "GET"): tags, ("comment.created", "WS"): frames}, total_entry)
    total, groups = observations(stats, (), ["WS comment.created"])
    assert (total.requests, total.failures) == (90, 0)
    assert total.rps == 9.0  # the total's rate for the 90 requests of 120 events
    assert total.p99_ms == 10
    assert {g.group for g in groups} == {"GET /api/tags", "WS comment.created"}  # judged on its own
    assert observations(stats)[0].requests == 120


def test_the_verdict_table_names_each_gate_and_the_outcome(tmp_path: Path) -> None:
    verdict = evaluate(CONFIG, HEALTHY, [group("GET /api/articles/[slug]", p99=400)])
    console = Console(record=True, width=150, color_system=None)
    print_verdict(verdict, console)
    out = console.export_text()
    assert "GET /api/articles/[slug]" in out  # brackets are not taken for markup
    assert "FAIL" in out
    assert "SLO verdict: FAIL (1 of" in out
    write_report(tmp_path / "run_slo.json", verdict, HEALTHY, {"shape": "steady"})
    report = json.loads((tmp_path / "run_slo.json").read_text())
    assert report["passed"] is False
    assert report["shape"] == "steady"
    assert report["total"]["requests"] == 1000


def test_percentiles_agree_with_locusts_own() -> None:
    # Locust is imported in a child: in this process it would monkey-patch everything with gevent.
    histograms = [{10: 1}, {10: 95, 20: 4, 900: 1}, {1: 3, 5: 7, 12: 50, 130: 39, 4000: 1}, {}]
    shares = [0.5, 0.95, 0.99, 1.0]
    script = (
        "import json, sys\n"
        "from locust.stats import calculate_response_time_percentile as p\n"
        "cases = json.loads(sys.argv[1])\n"
        "print(json.dumps([[p({int(k): v for k, v in h.items()}, sum(h.values()), s) for s in cases['shares']]"
        " for h in cases['histograms']]))\n"
    )
    cases = json.dumps({"histograms": histograms, "shares": shares})
    result = subprocess.run([sys.executable, "-c", script, cases], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == [[percentile(h, s) for s in shares] for h in histograms]


LIVE_CONFIG = replace(CONFIG, max_lost_events=0)


def test_a_single_lost_event_fails_the_live_gate_and_resyncs_are_not_lost() -> None:
    kept = LiveCount(expected=40, delivered=37, resynced=3, lost=0)
    verdict = evaluate(LIVE_CONFIG, HEALTHY, [], kept)
    assert verdict.passed
    check = next(check for check in verdict.checks if check.gate == "lost events")
    assert (check.group, check.observed, check.passed) == (LIVE, 0, True)
    assert "37 delivered, 3 resynced" in check.note
    one_lost = LiveCount(expected=40, delivered=39, resynced=0, lost=1)
    assert failed(evaluate(LIVE_CONFIG, HEALTHY, [], one_lost)) == [(LIVE, "lost events")]


def test_the_live_gate_is_skipped_without_listeners_or_expected_comments() -> None:
    # No listener in the run (None): no live check at all; listeners that expected nothing: shown, skipped.
    assert [c for c in evaluate(LIVE_CONFIG, HEALTHY, []).checks if c.group == LIVE] == []
    nothing = evaluate(LIVE_CONFIG, HEALTHY, [], LiveCount(0, 0, 0, 0))
    assert [(c.gate, c.passed) for c in nothing.checks if c.group == LIVE] == [("lost events", None)]
    assert nothing.passed


def test_an_unknown_key_in_the_live_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "slo.toml"
    path.write_text("[live]\nmax_lost = 0\n")
    with pytest.raises(ValueError, match="unknown keys"):
        SloConfig.load(path)
