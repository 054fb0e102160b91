"""Inkwell's endpoints against a bare FastAPI app, side by side in one run.

On the benchmark data set (`inkwell seed`: 50 users, 500 articles of about 1.6 KB with 1 to 4 of 20
tags, 1,000 comments, 1,500 favourites, 250 follows, seed 42) in PostgreSQL, the service runs as in
staging (`inkwell serve --workers 2`, its cache in Redis, observability as the chart ships it:
metrics, access log, tracing with its default sampler exporting to a live OTLP receiver); the bare app (bench/bare.py)
runs under uvicorn with the same workers, loop and HTTP parser. wrk runs on the other cores.

    make bench          # or: uv run python -m bench.endpoints --rounds 3 --seconds 5

Prints per endpoint `BENCH <endpoint> rps=<n> p50_ms=<n> p99_ms=<n> ratio=<n>` (medians over the
rounds; ratio = the endpoint's throughput over the bare app's).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
from pathlib import Path

import httpx

from bench.observability import DEFAULT_SAMPLER, base_env
from bench.stack import INKWELL, Server, cores, cpu_set, inkwell_server, seeded_postgres, server, wrk
from launch import free_port
from tests.support.otlp import otlp_http_receiver
from tests.support.redis import redis_server

# Favourite, then unfavourite, each of 50 articles in turn: a write that leaves the data set as it
# found it. One article for every request would measure PostgreSQL queueing them all on that one
# row's lock (the server then idles at a quarter of a core), not the service.
WRITE_SCRIPT = """
local paths = {{{paths}}}
local headers = {{["Authorization"] = "Token {token}"}}
local n = 0
request = function()
  local path = paths[math.floor(n / 2) % #paths + 1]
  local method = (n % 2 == 0) and "POST" or "DELETE"
  n = n + 1
  return wrk.format(method, path, headers)
end
"""


def bare_server(*, workers: int, cpus: str, log: Path) -> contextlib.AbstractContextManager[Server]:
    port = free_port()
    argv = [INKWELL[0], "-m", "uvicorn", "bench.bare:app", "--port", str(port), "--workers", str(workers)]
    argv += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    return server(argv, port=port, cpus=cpus, log=log)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", help="comma-separated endpoint names")
    args = parser.parse_args()
    server_cpus, load_cpus = cores()
    # This process (its OTLP and Sentry receivers) runs beside wrk, never on the server's cores.
    os.sched_setaffinity(0, cpu_set(load_cpus))
    logs = Path(tempfile.mkdtemp(prefix="inkwell-bench-"))

    with seeded_postgres() as (_cluster, url), otlp_http_receiver() as otlp, redis_server() as redis:
        env = (
            base_env(url)
            | DEFAULT_SAMPLER
            | {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint, "INKWELL_REDIS_URL": redis.url}
        )
        with (
            inkwell_server(env, workers=args.workers, cpus=server_cpus, log=logs / "inkwell.log") as inkwell,
            bare_server(workers=args.workers, cpus=server_cpus, log=logs / "bare.log") as bare,
        ):
            api = inkwell.url + "/api"
            slug = httpx.get(f"{api}/articles?limit=1").json()["articles"][0]["slug"]
            login = {"user": {"email": "user001@inkwell.test", "password": "inkwell-demo"}}
            token = httpx.post(f"{api}/users/login", json=login).json()["user"]["token"]
            auth = {"Authorization": f"Token {token}"}
            script = logs / "write.lua"
            slugs = [a["slug"] for a in httpx.get(f"{api}/articles?limit=50").json()["articles"]]
            paths = ", ".join(f'"/api/articles/{each}/favorite"' for each in slugs)
            script.write_text(WRITE_SCRIPT.format(paths=paths, token=token))
            endpoints: dict[str, tuple[str, dict[str, str], Path | None]] = {
                "articles-list": (f"{api}/articles?limit=20", {}, None),
                "article": (f"{api}/articles/{slug}", {}, None),
                "articles-list-signed-in": (f"{api}/articles?limit=20", auth, None),
                "tags": (f"{api}/tags", {}, None),
                "favorite-unfavorite": (f"{api}/articles/{slug}/favorite", {}, script),
            }
            if args.only:
                endpoints = {k: v for k, v in endpoints.items() if k in args.only.split(",")}
            runs: dict[str, list[tuple[float, float, float]]] = {}
            for round_number in range(args.rounds):
                order = ["bare", *endpoints]
                if round_number % 2:
                    order.reverse()  # drift on a shared machine hits both ends alike
                for name in order:
                    target, headers, lua = (bare.url + "/", {}, None) if name == "bare" else endpoints[name]
                    result = wrk(
                        target,
                        seconds=args.seconds,
                        connections=args.connections,
                        cpus=load_cpus,
                        headers=headers,
                        script=lua,
                    )
                    runs.setdefault(name, []).append((result.rps, result.p50_ms, result.p99_ms))
        bare_rps = statistics.median(r[0] for r in runs["bare"])
        for name in ["bare", *endpoints]:
            rps, p50, p99 = (statistics.median(r[i] for r in runs[name]) for i in range(3))
            print(f"BENCH {name} rps={rps:.0f} p50_ms={p50:.1f} p99_ms={p99:.1f} ratio={rps / bare_rps:.3f}")
        print(
            f"# {args.rounds} rounds of {args.seconds}s, {args.connections} connections, server cores "
            f"{server_cpus}, wrk on {load_cpus}; spans exported: {len(otlp.spans())}; logs in {logs}"
        )


if __name__ == "__main__":
    main()
