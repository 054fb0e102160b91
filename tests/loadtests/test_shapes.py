"""The load shapes tick as documented, and a ramp's stages show where throughput stops growing."""

from __future__ import annotations

import pytest

from loadtests.shapes import ShapeParams, StageRecorder, StageResult, build, find_knee


def ticks(name: str, params: ShapeParams, until: float, step: float = 1.0) -> list[tuple[float, object]]:
    schedule = build(name, params)
    return [(second * step, schedule.tick(second * step)) for second in range(int(until / step) + 1)]


def test_steady_holds_the_users_for_the_run_time_then_stops() -> None:
    schedule = build("steady", ShapeParams(users=12, spawn_rate=4, seconds=30))
    assert schedule.tick(0) == (12, 4)
    assert schedule.tick(29.9) == (12, 4)
    assert schedule.tick(30) is None


def test_steady_defaults_to_20_users_for_a_minute_started_over_5_seconds() -> None:
    schedule = build("steady", ShapeParams())
    assert schedule.tick(0) == (20, 4.0)
    assert schedule.seconds == 60


def test_ramp_steps_up_to_the_user_count_then_stops() -> None:
    schedule = build("ramp", ShapeParams(users=25, step_users=10, step_seconds=20))
    seen = [schedule.tick(t) for t in (0, 19.9, 20, 39.9, 40, 59.9)]
    rate = 10 / 2  # each step's users arrive within a tenth of the step
    assert seen == [(10, rate), (10, rate), (20, rate), (20, rate), (25, rate), (25, rate)]
    assert schedule.tick(60) is None
    assert [stage.label for stage in schedule.stages] == [
        "step 1: 10 users",
        "step 2: 20 users",
        "step 3: 25 users",
    ]


def test_spike_jumps_to_the_peak_within_a_second_and_comes_back() -> None:
    schedule = build("spike", ShapeParams(users=10, seconds=100, spike_factor=5))
    assert schedule.tick(0) == (10, 2.0)
    assert schedule.tick(39.9) == (10, 2.0)
    assert schedule.tick(40) == (50, 50.0)
    assert schedule.tick(59.9) == (50, 50.0)
    assert schedule.tick(60) == (10, 50.0)
    assert schedule.tick(99.9) == (10, 50.0)
    assert schedule.tick(100) is None


def test_soak_runs_half_an_hour_by_default_reaching_its_users_within_a_minute() -> None:
    schedule = build("soak", ShapeParams(users=30))
    assert schedule.seconds == 1800
    users, rate = schedule.tick(0)  # type: ignore[misc]
    assert users == 30
    assert users / rate == pytest.approx(60)


def test_an_unknown_shape_is_refused_with_the_known_ones_named() -> None:
    with pytest.raises(ValueError, match="steady, ramp, spike, soak"):
        build("stairs", ShapeParams())


def test_shape_params_take_locusts_options_and_leave_missing_ones_to_the_shape() -> None:
    class Options:
        num_users = None
        spawn_rate = None
        run_time = 90
        step_users = 5
        step_seconds = 15.0
        spike_factor = 3.0

    assert ShapeParams.from_options(Options()) == ShapeParams(
        users=None, spawn_rate=None, seconds=90, step_users=5, step_seconds=15.0, spike_factor=3.0
    )


def test_the_recorder_measures_each_stage_after_it_settles() -> None:
    schedule = build("ramp", ShapeParams(users=20, step_users=10, step_seconds=40))
    recorder = StageRecorder(schedule)
    # Settled a quarter into each 40 s step (10 s): step 1 is measured from 10 s to 40 s.
    recorder.observe(0, 0, 0, {})
    recorder.observe(5, 50, 0, {10: 50})
    recorder.observe(10, 100, 0, {10: 100})
    recorder.observe(40, 400, 3, {10: 390, 200: 10})
    # Step 2 from 50 s to 80 s: 900 requests in 30 s, the slow ones all in this step.
    recorder.observe(50, 600, 3, {10: 590, 200: 10})
    recorder.observe(80, 1500, 3, {10: 1400, 200: 10, 500: 90})
    first, second = recorder.results
    assert (first.users, first.seconds, first.requests, first.failures) == (10, 30, 300, 3)
    assert first.rps == pytest.approx(10)
    assert (first.p50_ms, first.p95_ms, first.p99_ms) == (10, 10, 200)  # 10 slow of 300: 3.3%
    assert (second.users, second.requests, second.failures) == (20, 900, 0)
    assert second.rps == pytest.approx(30)
    assert (second.p50_ms, second.p95_ms) == (10, 500)


def stage(users: int, rps: float, p95: float = 50, failures: int = 0) -> StageResult:
    return StageResult(f"{users} users", users, 10, int(rps * 10), failures, 10, p95, p95)


def test_the_knee_is_the_last_stage_before_throughput_stops_following_the_users() -> None:
    stages = [stage(10, 10), stage(20, 20), stage(30, 29), stage(40, 31), stage(50, 31)]
    assert find_knee(stages) == 2  # 30 -> 40 users (+33%) brought +7% requests per second


def test_the_knee_is_also_where_p95_doubles_or_requests_fail() -> None:
    assert find_knee([stage(10, 10), stage(20, 20), stage(30, 30, p95=101)]) == 1
    assert find_knee([stage(10, 10), stage(20, 20, failures=5)]) == 0


def test_no_knee_while_throughput_keeps_up_with_the_users() -> None:
    assert find_knee([stage(10, 10), stage(20, 19), stage(30, 29)]) is None
    assert find_knee([stage(10, 10)]) is None
