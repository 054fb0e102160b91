"""How long an operator waits for `inkwell-ops` against `kubectl get` of the same objects, on the test
cluster (a private KWOK cluster from scripts/cluster.sh, or the one INKWELL_E2E_KUBECONFIG names) with the
chart installed at three replicas:

- **help**: `inkwell-ops --help` against `kubectl --help`;
- **status**: `inkwell-ops status` against one `kubectl get` of every kind status reads (Deployments,
  ReplicaSets, pods, PDBs, Services, Ingresses, EndpointSlices, HPAs, events);
- **releases**: `inkwell-ops releases` against `kubectl get deployments -l app.kubernetes.io/part-of=inkwell`;
- **history**: `inkwell-ops history` against `kubectl rollout history deployment/<name>`.

    uv run python -m bench.ops_cli [--rounds N] [--baseline DIR]

Each is a fresh process, as typed: its wall time is what the operator waits, interpreter start and imports
included. Rounds interleave the commands and rotate their order. Prints each command's median [IQR] in
milliseconds and `BENCH ops-<command> inkwell-ops/kubectl wall=<ratio> [IQR]`, the ratio paired round by
round. `--baseline DIR` adds the same inkwell-ops commands run from the `ops` package in DIR (e.g. `git
archive <commit> ops | tar -x -C DIR`), and their `after/before` ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.helm import CHART
from tests.support.kube import ROOT, Kube, cluster

RELEASE = "inkwell"
VALUES = (
    "secret.secretKey=bench-secret-bench-secret-bench-secret-01",
    "secret.databaseUrl=postgresql+asyncpg://inkwell:inkwell@postgres:5432/inkwell",
    "migrations.enabled=false",
    "image.tag=0.1.0",
    "replicaCount=3",
)
STATUS_KINDS = (
    "deployments,replicasets,pods,poddisruptionbudgets,services,ingresses,endpointslices,"
    "horizontalpodautoscalers,events"
)


@dataclass
class Command:
    name: str
    ops: list[str]  # inkwell-ops arguments
    kubectl: list[str]  # kubectl arguments
    times: dict[str, list[float]] = field(default_factory=dict)  # runner -> seconds, per round


def commands(namespace: str) -> list[Command]:
    return [
        Command("help", ["--help"], ["--help"]),
        Command("status", ["-n", namespace, "-r", RELEASE, "status"], ["get", STATUS_KINDS, "-n", namespace]),
        Command(
            "releases",
            ["-n", namespace, "releases"],
            ["get", "deployments", "-n", namespace, "-l", "app.kubernetes.io/part-of=inkwell"],
        ),
        Command(
            "history",
            ["-n", namespace, "-r", RELEASE, "history"],
            ["rollout", "history", f"deployment/{RELEASE}", "-n", namespace],
        ),
    ]


def _run(argv: list[str], env: dict[str, str], *, missing_ok: bool = False) -> float | None:
    # `python -m` puts the working directory first on sys.path, ahead of PYTHONPATH: each runner's ops
    # package is found only by running in the directory that holds it.
    cwd = env.get("PYTHONPATH")
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False, cwd=cwd)
    elapsed = time.perf_counter() - started
    if missing_ok and result.returncode == 2 and "No such command" in result.stderr:
        return None  # a command the baseline does not have yet
    if result.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")
    return elapsed


def _summary(values: Sequence[float]) -> tuple[float, float, float]:
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return median, q1, q3


def measure(kube: Kube, rounds: int, baseline: Path | None) -> list[Command]:
    env = kube.env() | {"INKWELL_OPS_CONFIG": os.devnull}
    runners: dict[str, tuple[list[str], dict[str, str]]] = {
        "inkwell-ops": (
            [sys.executable, "-m", "ops", "--kubeconfig", kube.kubeconfig],
            env | {"PYTHONPATH": str(ROOT)},
        ),
        "kubectl": (["kubectl", "--kubeconfig", kube.kubeconfig], env),
    }
    if baseline is not None:
        runners["inkwell-ops@before"] = (
            [sys.executable, "-m", "ops", "--kubeconfig", kube.kubeconfig],
            env | {"PYTHONPATH": str(baseline)},
        )
    found = commands(kube.namespace)
    # One unmeasured pass: the page cache and the API server's own warm-up fall on no round.
    skip: set[tuple[str, str]] = set()
    for command in found:
        for runner, (argv, runner_env) in runners.items():
            args = command.kubectl if runner == "kubectl" else command.ops
            if _run(argv + args, runner_env, missing_ok=runner.endswith("@before")) is None:
                skip.add((command.name, runner))
    names = list(runners)
    for round_ in range(rounds):
        for offset, command in enumerate(found):
            order = names[(round_ + offset) % len(names) :] + names[: (round_ + offset) % len(names)]
            for runner in order:
                if (command.name, runner) in skip:
                    continue
                argv, runner_env = runners[runner]
                args = command.kubectl if runner == "kubectl" else command.ops
                elapsed = _run(argv + args, runner_env)
                assert elapsed is not None
                command.times.setdefault(runner, []).append(elapsed)
    return found


def report(found: list[Command], rounds: int) -> None:
    print(f"{'command':10} {'runner':20} {'wall ms [IQR]':>24}")
    for command in found:
        for runner, times in command.times.items():
            median, q1, q3 = _summary([t * 1000 for t in times])
            print(f"{command.name:10} {runner:20} {median:>8.0f} [{q1:.0f}-{q3:.0f}]")
    print("# wall time of a fresh process, as typed; ratios paired round by round, median [IQR]")
    for command in found:
        pairs = [("inkwell-ops", "kubectl", "inkwell-ops/kubectl")]
        if "inkwell-ops@before" in command.times:  # absent where the baseline lacks the command
            pairs += [
                ("inkwell-ops@before", "kubectl", "before/kubectl"),
                ("inkwell-ops", "inkwell-ops@before", "after/before"),
            ]
        for numerator, denominator, label in pairs:
            ratios = [
                a / b for a, b in zip(command.times[numerator], command.times[denominator], strict=True)
            ]
            median, q1, q3 = _summary(ratios)
            print(f"BENCH ops-{command.name} {label} wall={median:.2f} [{q1:.2f}-{q3:.2f}] rounds={rounds}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10, help="rounds of every command and runner")
    parser.add_argument("--baseline", type=Path, help="a directory holding another version's ops package")
    # `make bench` passes every benchmark the same BENCH_ARGS: --baseline DIR means the same here (a
    # checkout holds ops/); the others (--same, --seconds ...) are the HTTP benchmarks' own.
    args, ignored = parser.parse_known_args(argv)
    if ignored:
        print(f"# bench.ops_cli: ignoring {' '.join(ignored)} (options of the HTTP benchmarks)")
    if args.baseline is not None and not (args.baseline / "ops" / "cli.py").exists():
        parser.error(f"{args.baseline} holds no ops/cli.py")
    with cluster() as shared:
        namespace = f"inkwell-bench-{uuid.uuid4().hex[:8]}"
        shared.run("kubectl", "create", "namespace", namespace)
        kube = Kube(kubeconfig=shared.kubeconfig, bin_dir=shared.bin_dir, namespace=namespace)
        try:
            install = ["helm", "install", RELEASE, str(CHART), "-n", namespace, "--wait", "--timeout", "180s"]
            for value in VALUES:
                install += ["--set", value]
            kube.run(*install, timeout=300)
            print(
                f"# bench.ops_cli: {args.rounds} rounds of each command, the chart installed in {namespace} "
                f"at 3 replicas; load average at start {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
            )
            found = measure(kube, args.rounds, args.baseline)
            report(found, args.rounds)
            print(f"# load average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        finally:
            shared.run("kubectl", "delete", "namespace", namespace, "--wait=false", check=False)


if __name__ == "__main__":
    main()
