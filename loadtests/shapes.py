"""Load shapes chosen by name (steady, ramp, spike, soak), and per-stage numbers from a run, so a ramp
shows where throughput stops growing with users: the knee. Free of locust (the locustfile adapts it)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loadtests.percentiles import percentile

SHAPES = ("steady", "ramp", "spike", "soak")


@dataclass(frozen=True)
class Stage:
    """Hold `users` (reached at `spawn_rate` users per second) until `until` seconds into the run."""

    label: str
    until: float
    users: int
    spawn_rate: float


@dataclass(frozen=True)
class ShapeParams:
    """What a shape is built from; None takes the shape's own default."""

    users: int | None = None
    spawn_rate: float | None = None
    seconds: float | None = None
    step_users: int = 10
    step_seconds: float = 30.0
    spike_factor: float = 5.0

    @classmethod
    def from_options(cls, options: Any) -> ShapeParams:
        """From locust's parsed options (-u, -r, -t and this locustfile's --step-*/--spike-factor)."""

        def number(name: str) -> Any:
            value = getattr(options, name, None)
            return value if value else None

        return cls(
            users=number("num_users"),
            spawn_rate=number("spawn_rate"),
            seconds=number("run_time"),
            step_users=number("step_users") or cls.step_users,
            step_seconds=number("step_seconds") or cls.step_seconds,
            spike_factor=number("spike_factor") or cls.spike_factor,
        )


@dataclass(frozen=True)
class Schedule:
    name: str
    stages: tuple[Stage, ...]

    @property
    def seconds(self) -> float:
        return self.stages[-1].until

    def stage_at(self, elapsed: float) -> int | None:
        for index, stage in enumerate(self.stages):
            if elapsed < stage.until:
                return index
        return None

    def tick(self, elapsed: float) -> tuple[int, float] | None:
        """(users, spawn rate) at `elapsed` seconds, None once the run is over."""
        index = self.stage_at(elapsed)
        if index is None:
            return None
        stage = self.stages[index]
        return stage.users, stage.spawn_rate

    def start_of(self, index: int) -> float:
        return self.stages[index - 1].until if index else 0.0


def steady(params: ShapeParams) -> Schedule:
    """`-u` users (20) for `-t` (60 s), started at `-r` per second (a fifth of them)."""
    users = params.users or 20
    rate = params.spawn_rate or max(users / 5, 1.0)
    return Schedule("steady", (Stage(f"{users} users", params.seconds or 60.0, users, rate),))


def ramp(params: ShapeParams) -> Schedule:
    """Steps of --step-users (10) held --step-seconds (30) each, up to `-u` users (100): where the
    requests per second stop rising with the users is the knee."""
    top = params.users or 100
    step = min(params.step_users, top)
    hold = params.step_seconds
    # Each step's users arrive within a tenth of the step, so most of it is measured at that load.
    rate = params.spawn_rate or max(step / (hold / 10), 1.0)
    stages = []
    for number in range(1, math.ceil(top / step) + 1):
        users = min(number * step, top)
        stages.append(Stage(f"step {number}: {users} users", number * hold, users, rate))
    return Schedule("ramp", tuple(stages))


def spike(params: ShapeParams) -> Schedule:
    """`-u` users (10) for 40% of `-t` (120 s), --spike-factor (5) times as many for 20%, all arriving
    within a second, then back to `-u` for the last 40%: does the service recover, and how fast?"""
    users = params.users or 10
    seconds = params.seconds or 120.0
    peak = max(round(users * params.spike_factor), users + 1)
    rate = params.spawn_rate or max(users / 5, 1.0)
    return Schedule(
        "spike",
        (
            Stage(f"baseline: {users} users", 0.4 * seconds, users, rate),
            Stage(f"spike: {peak} users", 0.6 * seconds, peak, float(peak)),
            Stage(f"recovery: {users} users", seconds, users, float(peak)),
        ),
    )


def soak(params: ShapeParams) -> Schedule:
    """`-u` users (20) for `-t` (30 min), ramped up over the first minute (or tenth): leaks, growing
    tables and slow drifts show up only over time."""
    users = params.users or 20
    seconds = params.seconds or 1800.0
    rate = params.spawn_rate or users / min(60.0, seconds / 10)
    return Schedule("soak", (Stage(f"{users} users", seconds, users, rate),))


BUILDERS = {"steady": steady, "ramp": ramp, "spike": spike, "soak": soak}


def build(name: str, params: ShapeParams) -> Schedule:
    try:
        return BUILDERS[name](params)
    except KeyError:
        raise ValueError(f"unknown shape {name!r}; choose one of {', '.join(SHAPES)}") from None


@dataclass
class StageResult:
    label: str
    users: int
    seconds: float
    requests: int
    failures: int
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass
class _Snapshot:
    elapsed: float
    requests: int
    failures: int
    response_times: dict[int, int]


@dataclass
class StageRecorder:
    """Measures each stage from when its users have settled (a quarter into it, at most 10 s) to its
    end, from snapshots of locust's running totals taken as the shape ticks (about once a second)."""

    schedule: Schedule
    results: list[StageResult] = field(default_factory=list)
    _start: _Snapshot | None = None
    _stage: int = 0

    def settled_at(self, index: int) -> float:
        start = self.schedule.start_of(index)
        return start + min(0.25 * (self.schedule.stages[index].until - start), 10.0)

    def observe(
        self, elapsed: float, requests: int, failures: int, response_times: Mapping[int, int]
    ) -> None:
        while self._stage < len(self.schedule.stages):
            stage = self.schedule.stages[self._stage]
            if self._start is None:
                if elapsed < self.settled_at(self._stage):
                    return
                self._start = _Snapshot(elapsed, requests, failures, dict(response_times))
                continue
            if elapsed < stage.until:
                return
            self.results.append(
                self._result(stage, _Snapshot(elapsed, requests, failures, dict(response_times)))
            )
            self._start = None
            self._stage += 1

    def _result(self, stage: Stage, end: _Snapshot) -> StageResult:
        assert self._start is not None
        start = self._start
        times = {ms: end.response_times[ms] - start.response_times.get(ms, 0) for ms in end.response_times}
        times = {ms: count for ms, count in times.items() if count > 0}
        requests = end.requests - start.requests

        return StageResult(
            label=stage.label,
            users=stage.users,
            seconds=end.elapsed - start.elapsed,
            requests=requests,
            failures=end.failures - start.failures,
            p50_ms=percentile(times, 0.5),
            p95_ms=percentile(times, 0.95),
            p99_ms=percentile(times, 0.99),
        )


def find_knee(
    results: list[StageResult],
    *,
    min_gain: float = 0.5,
    latency_factor: float = 2.0,
    max_failures: float = 0.01,
) -> int | None:
    """The index of the last stage before the service saturates, None if it never does.

    A stage is saturated when its requests per second grew less than `min_gain` times as much as its
    users did (proportionally) over the previous stage, or its p95 is more than `latency_factor`
    times the first stage's, or more than `max_failures` of its requests failed.
    """
    if len(results) < 2:
        return None
    first_p95 = results[0].p95_ms
    for index in range(1, len(results)):
        before, now = results[index - 1], results[index]
        user_growth = now.users / before.users - 1 if before.users else 0.0
        rps_growth = now.rps / before.rps - 1 if before.rps else 0.0
        if (
            (user_growth > 0 and rps_growth < min_gain * user_growth)
            or (first_p95 > 0 and now.p95_ms > latency_factor * first_p95)
            or now.failure_ratio > max_failures
        ):
            return index - 1
    return None
