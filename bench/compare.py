"""The comparison every benchmark here makes: named variants of the server, each pinned to the
servers' cores, run through the same endpoints in many short rounds, interleaved, the order rotated
each round. Each round records wrk's throughput and the CPU time the server's own processes spent
per request it completed; the second is the figure to trust on a shared machine, the first moves
with whatever else runs. Ratios are paired round by round and shown with their spread.

Two options make the instrument check itself: `--same` runs every variant twice (its own noise,
an A/A ratio that should be 1), `--baseline DIR` runs every variant from another checkout too,
interleaved, for after/before ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import launch
from bench.cputime import SOURCE, cores_busy, descendants, snapshot, spent, spent_by_stat
from bench.stack import INKWELL, ROOT, NoRequests, Stack, affinity, cpu_set, wrk

# After wrk stops, the server finishes the requests in flight and what they queued (log lines,
# spans); 0.1 s holds it, and costs under 2% of a 2-second round.
SETTLE_SECONDS = 0.1
# Two runs of the same commit must agree this closely before a difference says anything.
AGREEMENT = 0.03
TWIN, BEFORE = "#2", "@before"


@dataclass(frozen=True)
class Variant:
    """A server to compare. `env` is its whole environment. `tree`: another checkout to serve from,
    first on PYTHONPATH and its working directory, with this .venv's python. `app`: an ASGI app
    factory ("module:factory") that bench.serve serves as `inkwell serve` serves Inkwell's.
    `command`: another server altogether, to which `--port N --workers W` are appended."""

    name: str
    env: Mapping[str, str]
    tree: Path | None = None
    app: str | None = None
    command: tuple[str, ...] = ()
    # The variant this one repeats (`--same`) or runs from another tree (`--baseline`).
    copy_of: str | None = None

    @property
    def family(self) -> str:
        return self.copy_of or self.name

    def argv(self, *, port: int, workers: int) -> list[str]:
        if self.command:
            base = list(self.command)
        elif self.app:
            base = [sys.executable, "-m", "bench.serve", "--app", self.app]
        else:
            base = [*INKWELL, "serve", "--host", "127.0.0.1"]
        return [*base, "--port", str(port), "--workers", str(workers)]


@dataclass(frozen=True)
class Endpoint:
    """What wrk repeats: GET `path` with `headers`, or the requests `script` (wrk Lua, for writes)
    makes. `variants`: the variants (by family) that serve it; all when empty."""

    name: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    script: Path | None = None
    variants: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sample:
    """One round of one endpoint against one variant."""

    requests: int
    rps: float
    cpu_ns: int
    p50_ms: float
    p99_ms: float
    # The same CPU time from the processes' stat (to the tick, with the threads that ended).
    cpu_stat_ns: int = 0
    # The share of the servers' cores' time that went to anything but this server in the round:
    # other processes, interrupts, the hypervisor's other guests. What disturbed the round.
    others: float = 0.0
    # The CPU time of the stack's programs beside the server (Stack.beside) in the round, by name.
    beside_ns: Mapping[str, int] = field(default_factory=dict)

    @property
    def cpu_us(self) -> float:
        """The server's own CPU time per request completed, in microseconds."""
        return self.cpu_ns / 1000 / self.requests


@dataclass(frozen=True)
class Ratio:
    """`numerator` over `denominator`, each an (endpoint, variant) pair, paired round by round."""

    label: str
    numerator: tuple[str, str]
    denominator: tuple[str, str]
    # What the ratio checks, when it is not the comparison itself: "A/A", "after/before".
    kind: str = ""

    @property
    def expression(self) -> str:
        return f"{self.numerator[1]}/{self.denominator[1]}"


@dataclass(frozen=True)
class Options:
    rounds: int
    seconds: int
    warmup: int
    connections: int
    workers: int
    same: bool
    baseline: Path | None
    only: tuple[str, ...]


def arguments(
    parser: argparse.ArgumentParser, *, rounds: int = 12, seconds: int = 2, connections: int, workers: int
) -> None:
    """The options every comparison takes."""
    parser.add_argument("--rounds", type=int, default=rounds, help="rounds of every endpoint and variant")
    parser.add_argument("--seconds", type=int, default=seconds, help="wrk's duration in a round")
    parser.add_argument(
        "--warmup", type=int, default=1, help="seconds of wrk, not recorded, before the rounds"
    )
    parser.add_argument("--connections", type=int, default=connections)
    parser.add_argument("--workers", type=int, default=workers)
    parser.add_argument("--only", default="", help="comma-separated endpoint names")
    parser.add_argument(
        "--same", action="store_true", help="run every variant twice: the instrument's own noise (A/A)"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also run every variant from the checkout in DIR, interleaved: after/before ratios",
    )


def command_line(description: str, *, connections: int, workers: int) -> Options:
    """A comparison's options from its command line (its module's docstring as the help)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    arguments(parser, connections=connections, workers=workers)
    return options(parser.parse_args())


def options(args: argparse.Namespace) -> Options:
    baseline = args.baseline.resolve() if args.baseline else None
    if baseline is not None and not (baseline / "service").is_dir():
        raise SystemExit(f"--baseline {args.baseline}: not a checkout of this repository (no service/)")
    return Options(
        rounds=args.rounds,
        seconds=args.seconds,
        warmup=args.warmup,
        connections=args.connections,
        workers=args.workers,
        same=args.same,
        baseline=baseline,
        only=tuple(name for name in args.only.split(",") if name),
    )


def serves(endpoint: Endpoint, variant: Variant) -> bool:
    return not endpoint.variants or variant.family in endpoint.variants


def with_copies(variants: Sequence[Variant], opts: Options) -> list[Variant]:
    """The variants, each also run from the baseline tree (--baseline), and all of those twice (--same)."""
    result = list(variants)
    if opts.baseline is not None:
        result += [replace(v, name=v.name + BEFORE, tree=opts.baseline, copy_of=v.name) for v in variants]
    if opts.same:
        result += [replace(v, name=v.name + TWIN, copy_of=v.family) for v in result]
    return result


def with_checks(
    ratios: Sequence[Ratio],
    variants: Sequence[Variant],
    endpoints: Sequence[Endpoint],
    opts: Options,
    prefix: str,
) -> list[Ratio]:
    """The caller's ratios, and those the copies add: the caller's again between the baseline's
    runs, each variant after over before, each run over its twin (A/A)."""
    result = list(ratios)
    if opts.baseline is not None:
        result += [
            Ratio(
                r.label + BEFORE,
                (r.numerator[0], r.numerator[1] + BEFORE),
                (r.denominator[0], r.denominator[1] + BEFORE),
            )
            for r in ratios
        ]
        result += [
            Ratio(f"{prefix}{e.name}", (e.name, v.name), (e.name, v.name + BEFORE), "after/before")
            for e in endpoints
            for v in variants
            if serves(e, v)
        ]
    if opts.same:
        originals = with_copies(variants, replace(opts, same=False))
        result += [
            Ratio(f"{prefix}{e.name}", (e.name, v.name + TWIN), (e.name, v.name), "A/A")
            for e in endpoints
            for v in originals
            if serves(e, v)
        ]
    return result


@dataclass
class Server:
    variant: Variant
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def servers(variants: Sequence[Variant], *, opts: Options, stack: Stack) -> Iterator[dict[str, Server]]:
    """Every variant's server running on the servers' cores, by variant name."""
    with contextlib.ExitStack() as running:
        started: dict[str, Server] = {}
        for variant in variants:
            port = launch.free_port()
            env = dict(variant.env)
            if variant.tree is not None:
                env["PYTHONPATH"] = ":".join(filter(None, [str(variant.tree), env.get("PYTHONPATH", "")]))
            process = running.enter_context(
                launch.running(
                    variant.argv(port=port, workers=opts.workers),
                    what=f"the server of {variant.name}",
                    log=stack.logs / f"{variant.name}.log",
                    ready=launch.listening(port),
                    env=env,
                    cwd=variant.tree or ROOT,
                    cpus=stack.cores.server,
                    stop_timeout=60,
                )
            )
            started[variant.name] = Server(variant, process, port)
        yield started


def rotated(items: Sequence[str], by: int) -> list[str]:
    shift = by % len(items) if items else 0
    return [*items[shift:], *items[:shift]]


def schedule(
    endpoints: Sequence[str], variants: Mapping[str, Sequence[str]], round_number: int
) -> list[tuple[str, str]]:
    """One round's order: the endpoints, and each endpoint's variants, rotated by the round's
    number, so that over as many rounds as there are variants each goes first once and drift on a
    shared machine falls on all alike."""
    return [(e, v) for e in rotated(endpoints, round_number) for v in rotated(variants[e], round_number)]


Samples = dict[tuple[str, str], list[Sample]]


def measure(
    running: Mapping[str, Server],
    endpoints: Sequence[Endpoint],
    rounds: range,
    *,
    opts: Options,
    stack: Stack,
) -> Samples:
    """Every endpoint against every variant that serves it (in the order of `running`), once per
    round in `rounds`, interleaved."""
    by_name = {endpoint.name: endpoint for endpoint in endpoints}
    server_cores = cpu_set(stack.cores.server)
    serving = {
        e.name: [name for name, s in running.items() if not e.variants or s.variant.family in e.variants]
        for e in endpoints
    }

    def one(endpoint: Endpoint, server: Server, seconds: int) -> Sample:
        beside_before = {name: snapshot(pid) for name, pid in stack.beside.items()}
        cores_before, before = cores_busy(server_cores), snapshot(server.process.pid)
        result = wrk(
            server.url + endpoint.path,
            seconds=seconds,
            connections=opts.connections,
            cpus=stack.cores.load,
            headers=dict(endpoint.headers),
            script=endpoint.script,
        )
        time.sleep(SETTLE_SECONDS)
        after, cores_after = snapshot(server.process.pid), cores_busy(server_cores)
        beside = {name: spent(beside_before[name], snapshot(pid)) for name, pid in stack.beside.items()}
        cpu = spent(before, after)
        busy, elapsed = cores_after[0] - cores_before[0], cores_after[1] - cores_before[1]
        return Sample(
            requests=result.requests,
            rps=result.rps,
            cpu_ns=cpu,
            p50_ms=result.p50_ms,
            p99_ms=result.p99_ms,
            cpu_stat_ns=spent_by_stat(before, after),
            others=max(busy - cpu, 0) / elapsed if elapsed else 0.0,
            beside_ns=beside,
        )

    if opts.warmup > 0:
        for e, v in schedule(list(by_name), serving, 0):
            # A warm-up that completes nothing (a slow endpoint on a cold cache) has still warmed up.
            with contextlib.suppress(NoRequests):
                one(by_name[e], running[v], opts.warmup)
    samples: Samples = {}
    for round_number in rounds:
        for e, v in schedule(list(by_name), serving, round_number):
            samples.setdefault((e, v), []).append(one(by_name[e], running[v], opts.seconds))
    return samples


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(first quartile, median, third quartile)."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def paired(samples: Samples, ratio: Ratio) -> tuple[list[float], list[float]]:
    """Round by round: (numerator's requests per CPU-second over the denominator's, rps over rps)."""
    numerator, denominator = samples[ratio.numerator], samples[ratio.denominator]
    by_cpu = [d.cpu_us / n.cpu_us for n, d in zip(numerator, denominator, strict=True)]
    by_rps = [n.rps / d.rps for n, d in zip(numerator, denominator, strict=True)]
    return by_cpu, by_rps


def spread(values: Sequence[float], digits: int = 3) -> str:
    """The median and, in brackets, the interquartile range."""
    q1, q2, q3 = quartiles(values)
    return f"{q2:.{digits}f} [{q1:.{digits}f}-{q3:.{digits}f}]"


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def print_header(title: str, opts: Options, stack: Stack) -> None:
    print(
        f"# {title}: {opts.rounds} rounds of {opts.seconds} s per endpoint and variant (order rotated "
        f"each round; the servers started twice, in opposite orders, for half the rounds each, after "
        f"{opts.warmup} s of warm-up), {opts.connections} connections, {opts.workers} worker(s); "
        f"load average at start {load_average()}"
    )


def print_table(samples: Samples) -> None:
    """Per endpoint and variant: throughput and CPU per request, median [IQR], latency, and the
    share of the servers' cores' time something else took in those rounds; then the CPU per request
    of each program counted beside the server (Stack.beside), if any."""
    beside = sorted({name for runs in samples.values() for s in runs for name in s.beside_ns})
    rows = [
        (
            "endpoint", "variant", "rps [IQR]", "CPU us/request [IQR]", "p50 ms", "p99 ms", "others %",
            *(f"{name} us/req" for name in beside),
        )
    ]  # fmt: skip
    for (e, v), runs in samples.items():
        rows.append(
            (
                e,
                v,
                spread([s.rps for s in runs], 0),
                spread([s.cpu_us for s in runs], 1),
                f"{statistics.median(s.p50_ms for s in runs):.1f}",
                f"{statistics.median(s.p99_ms for s in runs):.1f}",
                f"{statistics.median(s.others for s in runs):.0%}".removesuffix("%"),
                *(f"{statistics.median(beside_us(s, name) for s in runs):.1f}" for name in beside),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(
                cell.ljust(width) if i < 2 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )


def beside_us(sample: Sample, name: str) -> float:
    """The CPU time the program `name` beside the server spent per request in the round, in us."""
    return sample.beside_ns.get(name, 0) / 1000 / sample.requests


def print_ratios(samples: Samples, ratios: Sequence[Ratio]) -> None:
    print(
        "# Ratios paired round by round, median [IQR]. cpu: requests per CPU-second of the server's own "
        "processes, numerator's over denominator's: the one to trust. rps: throughput, which also moves "
        "with whatever else the machine runs."
    )
    for ratio in ratios:
        by_cpu, by_rps = paired(samples, ratio)
        kind = f" ({ratio.kind})" if ratio.kind else ""
        print(
            f"BENCH {ratio.label} {ratio.expression}{kind} cpu={spread(by_cpu)} rps={spread(by_rps)} "
            f"cpu_range={min(by_cpu):.3f}-{max(by_cpu):.3f} rounds={len(by_cpu)}"
        )
    twins = [ratio for ratio in ratios if ratio.kind == "A/A"]
    if twins:
        worst = max(abs(1 - statistics.median(paired(samples, ratio)[0])) for ratio in twins)
        verdict = "within" if worst <= AGREEMENT else "NOT within"
        print(
            f"# A/A: the same server twice differs by at most {worst:.1%} by CPU ({verdict} "
            f"{AGREEMENT:.0%}); a difference smaller than that, or than two runs' disagreement, says nothing."
        )


def placed(running: Mapping[str, Server]) -> set[int]:
    """The cores the kernel lets the servers' processes run on."""
    cores: set[int] = set()
    for server in running.values():
        for pid in [server.process.pid, *descendants(server.process.pid)]:
            cores |= affinity(pid)
    return cores


def print_footer(servers_on: set[int], samples: Samples, stack: Stack) -> None:
    """Where everything ran, as the kernel has it, and what counted the CPU time."""
    others = stack.placement()
    placed = "; ".join(f"{name} {sorted(cpus)}" for name, cpus in others.items())
    wrk_on = cpu_set(stack.cores.load)
    print(f"# cores (the kernel's affinity): servers {sorted(servers_on)}; wrk {sorted(wrk_on)}; {placed}")
    shared = sorted(name for name, cpus in others.items() if cpus & servers_on)
    if servers_on == wrk_on:
        print("# one core only: everything shared it; trust the CPU ratios, not throughput")
    elif shared:
        print(f"# WARNING: {', '.join(shared)} could run on the servers' cores")
    # Threads that ended mid-round are missing from the per-thread figures; the processes' stat
    # still counts them. Where the two totals differ by more than the ticks' rounding, it shows.
    missed = {
        v: sum(s.cpu_stat_ns for s in runs) / sum(s.cpu_ns for s in runs) - 1
        for v in {variant for _, variant in samples}
        if (runs := [s for (_, variant), series in samples.items() if variant == v for s in series])
    }
    worst = max(missed, key=lambda v: abs(missed[v]))
    print(
        f"# CPU time from {SOURCE}; the processes' stat (which counts threads that ended, to 10 ms) "
        f"differs by at most {missed[worst]:+.1%} ({worst}); load average at the end {load_average()}; "
        f"logs in {stack.logs}"
    )


def compare(
    title: str,
    variants: Sequence[Variant],
    endpoints: Callable[[str], Sequence[Endpoint]],
    ratios: Callable[[Sequence[Endpoint]], Sequence[Ratio]],
    *,
    opts: Options,
    stack: Stack,
    prefix: str = "",
) -> Samples:
    """Runs `variants` through `endpoints` and prints the table and `ratios` (built from the
    endpoints), with those --same and --baseline add; `prefix` starts the names of the latter.

    `endpoints` is given the URL of a server of the first variant started for it alone and stopped
    before the rounds: what it asks to find its paths (a slug, a login) reaches no measured server,
    so that the first variant's differs from its copies by nothing but its place in the order."""
    setup = replace(variants[0], name="setup")
    with servers([setup], opts=opts, stack=stack) as running:
        chosen = [e for e in endpoints(running["setup"].url) if not opts.only or e.name in opts.only]
    print_header(title, opts, stack)
    copies = with_copies(variants, opts)
    samples: Samples = {}
    servers_on: set[int] = set()
    # Of two servers of the same commit, the one started later cost 1.5 to 3% less CPU per request
    # for the rest of the run (A/A, whichever was scheduled first), and a process's own luck (its
    # hash seed, its memory layout) stays with it for life. So the servers are started twice, in
    # opposite orders, and each start serves half of the rounds: the first effect cancels, the
    # second shows in the spread.
    half = (opts.rounds + 1) // 2
    for order, rounds in ((copies, range(half)), (copies[::-1], range(half, opts.rounds))):
        with servers(order, opts=opts, stack=stack) as started:
            running = {v.name: started[v.name] for v in copies}
            servers_on |= placed(running)
            for (e, v), part in measure(running, chosen, rounds, opts=opts, stack=stack).items():
                samples.setdefault((e, v), []).extend(part)
    print_table(samples)
    print_ratios(samples, with_checks(ratios(chosen), variants, chosen, opts, prefix))
    print_footer(servers_on, samples, stack)
    return samples


def against_first(
    endpoints: Sequence[Endpoint], variants: Sequence[Variant], prefix: str = ""
) -> list[Ratio]:
    """For every endpoint, each variant that serves it over the first: what most comparisons want."""
    reference, *others = variants
    return [
        Ratio(f"{prefix}{e.name}", (e.name, other.name), (e.name, reference.name))
        for e in endpoints
        for other in others
        if serves(e, other) and serves(e, reference)
    ]
