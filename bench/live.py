"""Live updates (`GET /api/live`) against a bare Starlette WebSocket broadcast, side by side in one run.

What a live socket costs the process that holds it, and how long a fanned-out comment takes to reach
a thousand readers, are the two numbers that size a deployment (sockets per pod, and whether the
fan-out keeps up with the writes). Neither means much alone on a shared machine, so each is divided
by the same figure of the least a WebSocket broadcast can be, measured in the same rounds:

- **inkwell**: `inkwell serve` (one worker), as staging runs it: PostgreSQL, Redis as the bus (and
  the limits store), observability as the chart ships it. The sockets are anonymous, each
  subscribed to one article; each fan-out is a comment posted over REST by a signed-in user.
- **bare**: `bench.live:bare_app`, a Starlette app served by `bench.serve` exactly as `inkwell serve`
  serves Inkwell (service.serving: uvloop, httptools, the same WebSocket settings: no
  permessage-deflate, the same pings). It accepts the same subprotocol and subscribe message, keeps
  its sockets in a set, and `POST /broadcast` sends one small JSON frame to every one of them, inline.
  It skips everything Inkwell does beside the sending: the Host and Origin checks, the token and
  connection limits (a Lua script in Redis per connect, refreshed every 20 s), the article's lookup
  per subscription, topics, per-socket queues and sender tasks, the comment's write to PostgreSQL,
  the bus (XADD, then every process's XREAD), metrics, spans and access lines. The ratio is what
  those cost, not what WebSockets cost.

Each round starts a fresh server per variant (the order rotated each round), so the resident memory
a socket adds is measured from a process that has held none before: Python's allocator keeps what
it freed, and a second thousand opened after a first was closed costs nearly nothing. In a round:
a warm-up (50 sockets, two fan-outs, closed), the process's RSS, then for each level of `--sockets`
the sockets opened up to it (RSS again) and `--fanouts` fan-outs to all of them, each waited for
until every socket has its frame.

The client is this process, an asyncio `websockets` client on uvloop, on the other half of the cores
with PostgreSQL and Redis (bench.stack). A frame's arrival is stamped when the client's event loop
reads its bytes (`data_received`), not when the socket's task gets round to it, and the client's own
CPU during the fan-outs is printed, so that a client that was the bottleneck shows.

Lags, per socket and fan-out: **post** from the client's send of the POST; **commit** from the
event's commit, read from the Redis stream id the event carries (Redis's clock in milliseconds, when
the XADD after the commit ran) for Inkwell, and from the bare app's own time just before it sends
(truncated to the millisecond the same way) for the bare app.

    make bench          # or: uv run python -m bench.live [--rounds 6] [--sockets 1000,3000] [--fanouts 5] [--same]

Prints per measure and variant the median [IQR] of the rounds, then `BENCH live-<measure>
inkwell/bare ratio=<median> [IQR]` paired round by round.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

import launch
from bench import compare
from bench.cputime import cores_busy, descendants, snapshot, spent
from bench.endpoints import sign_in
from bench.stack import DEFAULT_SAMPLER, INKWELL, ROOT, Stack, affinity, base_env, cpu_set, stack

PROTOCOL = Subprotocol("inkwell.live.v1")
WAIT = 120.0  # for a socket's handshake or a fan-out's last frame: a bound on failure, never a measure
# Connects in flight at once: enough to open a thousand in a few seconds, fewer than the listen backlog.
CONNECTING = 32
WARMUP_SOCKETS = 50
STREAM_ID = re.compile(rb'"id":\s*"(\d+)-')


def bare_app() -> Starlette:
    """The baseline: the same subprotocol and subscribe message, a set of sockets, and a POST that
    sends one small JSON frame to every socket in it. Nothing else (see the module's docstring)."""
    sockets: set[WebSocket] = set()
    sequence = 0

    async def live(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol=PROTOCOL)
        try:
            message = await websocket.receive_json()
            await websocket.send_json({"type": "subscribed", "topics": message.get("topics", [])})
            sockets.add(websocket)
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            sockets.discard(websocket)

    async def broadcast(request: Request) -> JSONResponse:
        nonlocal sequence
        sequence += 1
        body = await request.json()
        sent = time.time()
        frame = json.dumps(
            {
                "id": f"{int(sent * 1000)}-{sequence}",
                "topic": "article:bare",
                "type": "comment.created",
                "comment": {"id": sequence, "body": body["body"], "author": {"username": "bare"}},
            }
        )
        for websocket in list(sockets):
            with contextlib.suppress(Exception):  # a socket closing meanwhile is the client's business
                await websocket.send_text(frame)
        return JSONResponse({"sent": len(sockets)})

    return Starlette(routes=[WebSocketRoute("/live", live), Route("/broadcast", broadcast, methods=["POST"])])


@dataclass
class FanOut:
    """One fan-out being waited for: the arrivals of its frame, by socket."""

    marker: bytes
    expected: int
    arrivals: list[tuple[float, float]] = field(default_factory=list)  # (arrived, committed)
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Target:
    """How the client reaches a variant: its socket URL and a way to cause one fan-out."""

    name: str
    ws_url: str
    topic: str
    post: Callable[[httpx.AsyncClient, str], Awaitable[None]]


class Stamping(asyncio.Protocol):
    """A socket's reader once its handshake and subscription are done: stamps each frame when the
    event loop reads its bytes and parses no more of it than a frame's header. A thousand sockets
    read by one client are read one after another, so what the client spends per frame is added to
    the arrival of every frame after it; websockets' own reader (its frame parser, its queue, a task
    woken per frame) kept the client 91% busy through the bare app's fan-outs to 200 sockets, where
    this one is under half busy at 1,000: the client, not the server, was being measured. The
    server's frames are unmasked and, without permessage-deflate, their payload is the JSON as sent."""

    def __init__(self, readers: Readers) -> None:
        self.readers = readers
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        arrived = time.time()
        self.buffer += data
        while len(self.buffer) >= 2:
            opcode, length, start = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F, 2
            if length == 126:
                length, start = int.from_bytes(self.buffer[2:4], "big"), 4
            elif length == 127:
                length, start = int.from_bytes(self.buffer[2:10], "big"), 10
            if len(self.buffer) < start + length:
                return
            payload, self.buffer = self.buffer[start : start + length], self.buffer[start + length :]
            if opcode == 1:  # text; pings are off for the run (heartbeat), closes end it
                self.readers.arrived(arrived, payload)


class Readers:
    """The client's open sockets; each frame that arrives is counted into the current fan-out."""

    def __init__(self) -> None:
        self.transports: list[asyncio.BaseTransport] = []
        self.current: FanOut | None = None

    async def open(self, target: Target, count: int) -> None:
        gate = asyncio.Semaphore(CONNECTING)

        async def one() -> None:
            async with gate:
                ws = await connect(
                    target.ws_url,
                    subprotocols=[PROTOCOL],
                    compression=None,
                    open_timeout=WAIT,
                    ping_interval=None,
                )
                await ws.send(json.dumps({"type": "subscribe", "topics": [target.topic]}))
                answer = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
                if answer.get("type") != "subscribed":
                    raise RuntimeError(f"{target.name}: subscribe answered {answer}")
            # From here on the socket is read by Stamping; nothing is sent on it but its close.
            ws.transport.set_protocol(Stamping(self))
            self.transports.append(ws.transport)

        await asyncio.gather(*(one() for _ in range(count)))

    def arrived(self, arrived: float, payload: bytes) -> None:
        fanout = self.current
        if fanout is None or fanout.marker not in payload:
            return
        # The stream id's milliseconds (Inkwell: Redis's clock at the XADD after the commit; bare:
        # its own clock just before sending, truncated the same way), the frame's first field.
        stream_id = STREAM_ID.search(payload)
        if stream_id is None:
            raise RuntimeError(f"a frame without an event id: {payload!r}")
        committed = int(stream_id[1]) / 1000
        fanout.arrivals.append((arrived, committed))
        if len(fanout.arrivals) == fanout.expected:
            fanout.done.set()

    async def fan_out(self, target: Target, client: httpx.AsyncClient, marker: str) -> tuple[float, FanOut]:
        fanout = FanOut(f'"{marker}"'.encode(), len(self.transports))
        self.current = fanout
        posted = time.time()
        await target.post(client, marker)
        try:
            await asyncio.wait_for(fanout.done.wait(), WAIT)
        except TimeoutError:
            raise RuntimeError(
                f"{target.name}: {len(fanout.arrivals)} of {fanout.expected} sockets got the frame"
            ) from None
        self.current = None
        return posted, fanout

    async def close(self) -> None:
        # Without the closing handshake: the server sees the connection end, as when a tab closes.
        for transport in self.transports:
            transport.close()
        self.transports = []
        await asyncio.sleep(0)


def rss_bytes(pid: int) -> int:
    """The resident memory of `pid` and its descendants."""
    total = 0
    for process in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def _self_ns() -> int:
    """This process's CPU time, every thread: the client's, with the receivers' (idle) threads."""
    return time.process_time_ns()


Measures = dict[str, float]


async def one_run(
    target: Target, pid: int, levels: Sequence[int], fanouts: int, tag: str, server_cores: set[int]
) -> tuple[Measures, Measures]:
    """One fresh server: the warm-up, then each level's RSS per socket and fan-outs. Returns the
    measures, and beside them, by level, what the client spent and what else took the servers'
    cores during the fan-outs (shares of their wall time): how far to trust the round."""
    measures: Measures = {}
    conditions: Measures = {}
    readers = Readers()
    async with httpx.AsyncClient(timeout=WAIT) as client:
        await readers.open(target, WARMUP_SOCKETS)
        for n in range(2):
            await readers.fan_out(target, client, f"{tag}-warmup-{n}")
        await readers.close()
        await asyncio.sleep(1)  # the server's side of the closes, before the baseline
        held, rss = 0, rss_bytes(pid)
        for level in levels:
            await readers.open(target, level - held)
            after = rss_bytes(pid)
            measures[f"rss-per-socket-{level}"] = (after - rss) / (level - held) / 1024
            held, rss = level, after
            post_lags: list[float] = []
            commit_lags: list[float] = []
            cpu_ns = client_ns = wall = busy_ns = elapsed_ns = 0.0
            for n in range(fanouts):
                cores_before, before = cores_busy(server_cores), snapshot(pid)
                client_before, started = _self_ns(), time.monotonic()
                posted, fanout = await readers.fan_out(target, client, f"{tag}-{level}-{n}")
                wall += time.monotonic() - started
                client_ns += _self_ns() - client_before
                cpu_ns += spent(before, snapshot(pid))
                cores_after = cores_busy(server_cores)
                busy_ns += cores_after[0] - cores_before[0]
                elapsed_ns += cores_after[1] - cores_before[1]
                post_lags += [(arrived - posted) * 1000 for arrived, _ in fanout.arrivals]
                commit_lags += [(arrived - committed) * 1000 for arrived, committed in fanout.arrivals]
            measures[f"lag-post-p50-{level}"] = percentile(post_lags, 0.5)
            measures[f"lag-post-p99-{level}"] = percentile(post_lags, 0.99)
            measures[f"lag-commit-p50-{level}"] = percentile(commit_lags, 0.5)
            measures[f"lag-commit-p99-{level}"] = percentile(commit_lags, 0.99)
            measures[f"cpu-ms-per-fanout-{level}"] = cpu_ns / fanouts / 1e6
            conditions[f"client-{level}"] = client_ns / 1e9 / wall
            conditions[f"others-{level}"] = max(busy_ns - cpu_ns, 0) / elapsed_ns if elapsed_ns else 0.0
        await readers.close()
    return measures, conditions


@dataclass(frozen=True)
class Variant:
    """A server to start afresh each round: its command line (without the port), its environment,
    and what it is (`inkwell` or `bare`; a `--same` copy is named `<family>#2`)."""

    name: str
    argv: tuple[str, ...]
    env: dict[str, str]
    family: str


def variants(bench: Stack, *, same: bool) -> list[Variant]:
    """Inkwell and the bare app, and with `same` each again: two servers of one commit (A/A)."""
    assert bench.redis is not None
    env = base_env(bench.database_url) | {
        "INKWELL_REDIS_URL": bench.redis.url,
        # The benchmark's thousands of sockets come from one address (and anonymous).
        "INKWELL_LIVE_MAX_CONNECTIONS_PER_IP": "1000000",
        # No pings during a run (both servers take uvicorn's ping interval from it): the client's
        # reader parses frame headers only, and answers nothing.
        "INKWELL_LIVE_HEARTBEAT_SECONDS": "3600",
    }
    inkwell = env | DEFAULT_SAMPLER | {"OTEL_EXPORTER_OTLP_ENDPOINT": bench.otlp.endpoint}
    bare = [sys.executable, "-m", "bench.serve", "--app", "bench.live:bare_app"]
    result = [
        Variant("inkwell", (*INKWELL, "serve", "--host", "127.0.0.1", "--workers", "1"), inkwell, "inkwell"),
        Variant("bare", (*bare, "--workers", "1"), env, "bare"),
    ]
    if same:
        result += [Variant(v.name + compare.TWIN, v.argv, v.env, v.family) for v in result]
    return result


def target(family: str, base: str, token: str, slug: str) -> Target:
    """How the client reaches a server of `family` (inkwell, bare) at `base`."""

    async def comment(client: httpx.AsyncClient, body: str) -> None:
        answer = await client.post(
            f"{base}/api/articles/{slug}/comments",
            json={"comment": {"body": body}},
            headers={"Authorization": f"Token {token}"},
        )
        answer.raise_for_status()

    async def broadcast(client: httpx.AsyncClient, body: str) -> None:
        (await client.post(f"{base}/broadcast", json={"body": body})).raise_for_status()

    ws = base.replace("http://", "ws://")
    if family == "inkwell":
        return Target(family, ws + "/api/live", f"article:{slug}", comment)
    return Target(family, ws + "/live", "article:bare", broadcast)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=6, help="a fresh server per variant in each")
    parser.add_argument("--sockets", default="1000,3000", help="socket counts held, in increasing order")
    parser.add_argument("--fanouts", type=int, default=5, help="comments fanned out at each count")
    parser.add_argument(
        "--same", action="store_true", help="run every variant twice: the instrument's own noise (A/A)"
    )
    args = parser.parse_args(argv)
    levels = [int(n) for n in args.sockets.split(",")]
    with stack(redis=True) as bench, asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        servers = variants(bench, same=args.same)
        setup_port = launch.free_port()
        with launch.running(
            [*servers[0].argv, "--port", str(setup_port)],
            what="the setup server",
            log=bench.logs / "setup.log",
            ready=launch.listening(setup_port),
            env=servers[0].env,
            cwd=ROOT,
        ):
            # What the rounds need, asked of a server of its own: none of the measured ones answers
            # anything but the benchmark's sockets and comments.
            api = f"http://127.0.0.1:{setup_port}/api"
            token = sign_in(api, "user001@inkwell.test")
            slug = httpx.get(f"{api}/articles?limit=1", timeout=WAIT).json()["articles"][0]["slug"]
        print(
            f"# bench.live: {args.rounds} rounds, a fresh server per variant and round (order rotated each "
            f"round), sockets held {args.sockets}, {args.fanouts} fan-outs at each, one worker; "
            f"load average at start {compare.load_average()}",
            flush=True,
        )
        results: dict[str, list[Measures]] = {v.name: [] for v in servers}
        conditions: dict[str, list[Measures]] = {v.name: [] for v in servers}
        server_cores, cores_seen = cpu_set(bench.cores.server), set[int]()
        by_name = {v.name: v for v in servers}
        for round_number in range(args.rounds):
            for name in compare.rotated(list(by_name), round_number):
                variant = by_name[name]
                port = launch.free_port()
                with launch.running(
                    [*variant.argv, "--port", str(port)],
                    what=f"the server of {name}",
                    log=bench.logs / f"{name}-{round_number}.log",
                    ready=launch.listening(port),
                    env=variant.env,
                    cwd=ROOT,
                    cpus=bench.cores.server,
                    stop_timeout=60,
                ) as process:
                    cores_seen |= affinity(process.pid)
                    reach = target(variant.family, f"http://127.0.0.1:{port}", token, slug)
                    measures, seen = runner.run(
                        one_run(reach, process.pid, levels, args.fanouts, f"r{round_number}", server_cores)
                    )
                results[name].append(measures)
                conditions[name].append(seen)
        report(results, conditions, bench, cores_seen)


def report(
    results: dict[str, list[Measures]],
    conditions: dict[str, list[Measures]],
    bench: Stack,
    servers_on: set[int],
) -> None:
    names = list(results["inkwell"][0])
    rows = [("measure", "variant", "median [IQR]")]
    for measure in names:
        for variant in results:
            rows.append((measure, variant, compare.spread([r[measure] for r in results[variant]], 2)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print(f"{row[0].ljust(widths[0])}  {row[1].ljust(widths[1])}  {row[2].rjust(widths[2])}")
    print(
        "# rss-per-socket: KiB of the server's RSS per socket opened, from the level below; lag: ms, over "
        "every socket of every fan-out; cpu-ms-per-fanout: the server's CPU per fan-out, its POST included"
    )
    pairs = [("inkwell", "bare", "")]
    pairs += [(name, name.removesuffix(compare.TWIN), " (A/A)") for name in results if compare.TWIN in name]
    worst: dict[str, float] = {}
    for numerator, denominator, kind in pairs:
        for measure in names:
            ratios = [
                n[measure] / d[measure] for n, d in zip(results[numerator], results[denominator], strict=True)
            ]
            print(
                f"BENCH live-{measure} {numerator}/{denominator}{kind} ratio={compare.spread(ratios)} "
                f"rounds={len(ratios)}"
            )
            if kind:
                family = next(f for f in ("rss", "cpu", "lag") if measure.startswith(f))
                worst[family] = max(worst.get(family, 0.0), abs(1 - statistics.median(ratios)))
    if worst:
        print(
            "# A/A: the same server twice differs by at most "
            + ", ".join(f"{share:.1%} ({family})" for family, share in worst.items())
            + "; a difference smaller than that says nothing"
        )
    for variant, seen in conditions.items():
        figures = ", ".join(f"{key} {statistics.median(c[key] for c in seen):.0%}" for key in seen[0])
        print(f"# {variant} during the fan-outs, medians of the rounds: {figures}")
    print(
        "# client-N: the client's CPU over the fan-outs' wall time (near 100%, it would be the bottleneck); "
        "others-N: the servers' cores' time taken by anything but the server (/proc/stat, to the 10 ms tick: rough "
        "over fan-outs of tens of ms)"
    )
    placed = "; ".join(f"{name} {sorted(cpus)}" for name, cpus in bench.placement().items())
    print(f"# cores (the kernel's affinity): servers {sorted(servers_on)}; {placed}")
    print(f"# load average at the end {compare.load_average()}; logs in {bench.logs}")


if __name__ == "__main__":
    main()
