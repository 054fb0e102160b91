"""What observability costs: the same requests against the service with the production defaults
the chart ships (metrics, JSON access logs, tracing with its default sampler exporting to a live
OTLP receiver, Sentry enabled) and with all of it off, interleaved in one run.

    make bench          # or: uv run python -m bench.observability --rounds 5 --seconds 4

Prints `BENCH observability-<endpoint> ratio=<on/off>` per endpoint (throughput ratio, medians).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import httpx

from bench.stack import cores, cpu_set, inkwell_server, seeded_postgres, wrk
from tests.support.otlp import otlp_http_receiver
from tests.support.sentry import sentry_receiver
from tests.support.server import CHEAP_ARGON2

# The chart's defaults (charts/inkwell/values.yaml must say the same).
DEFAULT_SAMPLER = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}


def base_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INKWELL_", "OTEL_", "PROMETHEUS_"))}
    return (
        env
        | CHEAP_ARGON2
        | {
            "INKWELL_DATABASE_URL": database_url,
            "INKWELL_ENVIRONMENT": "staging",
            "INKWELL_SECRET_KEY": "bench-secret-bench-secret-bench-secret-0123",
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    server_cpus, load_cpus = cores()
    # This process (its OTLP and Sentry receivers) runs beside wrk, never on the server's cores.
    os.sched_setaffinity(0, cpu_set(load_cpus))
    logs = Path(tempfile.mkdtemp(prefix="inkwell-bench-"))

    with seeded_postgres() as (_cluster, url), otlp_http_receiver() as otlp, sentry_receiver() as sentry:
        off = base_env(url) | {
            "INKWELL_METRICS_ENABLED": "false",
            "INKWELL_ACCESS_LOG": "false",
            "INKWELL_LOG_LEVEL": "WARNING",
        }
        on = (
            base_env(url)
            | DEFAULT_SAMPLER
            | {
                "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
                "INKWELL_SENTRY_DSN": sentry.dsn,
            }
        )
        with (
            inkwell_server(off, workers=args.workers, cpus=server_cpus, log=logs / "off.log") as server_off,
            inkwell_server(on, workers=args.workers, cpus=server_cpus, log=logs / "on.log") as server_on,
        ):
            slug = httpx.get(f"{server_off.url}/api/articles?limit=1").json()["articles"][0]["slug"]
            endpoints = {"articles-list": "/api/articles?limit=20", "article": f"/api/articles/{slug}"}
            results: dict[tuple[str, str], list[float]] = {}
            for round_number in range(args.rounds):
                for name, path in endpoints.items():
                    # Alternate which goes first, so drift on a shared machine hits both alike.
                    order = [("off", server_off), ("on", server_on)]
                    if round_number % 2:
                        order.reverse()
                    for label, server in order:
                        result = wrk(
                            server.url + path,
                            seconds=args.seconds,
                            connections=args.connections,
                            cpus=load_cpus,
                        )
                        results.setdefault((name, label), []).append(result.rps)
            spans = len(otlp.spans())
        for name in endpoints:
            rps_on = statistics.median(results[(name, "on")])
            rps_off = statistics.median(results[(name, "off")])
            print(
                f"BENCH observability-{name} ratio={rps_on / rps_off:.3f} "
                f"rps_on={rps_on:.0f} rps_off={rps_off:.0f} rounds={args.rounds}"
            )
        print(f"# spans received by the OTLP receiver: {spans}; server logs in {logs}")
        access_lines = sum(
            1 for line in (logs / "on.log").read_text().splitlines() if '"inkwell.access"' in line
        )
        print(f"# access log lines written with observability on: {access_lines}")


if __name__ == "__main__":
    main()
