"""What observability costs: the same requests against the service with the production defaults
the chart ships (metrics, JSON access logs, tracing with its default sampler exporting to a live
OTLP receiver, Sentry enabled) and with all of it off, interleaved in one run.

    make bench          # or: uv run python -m bench.observability [--same] [--baseline DIR]

Prints the table of bench/compare.py and `BENCH observability-<endpoint> on/off cpu=<ratio> ...`
per endpoint: on's requests per CPU-second over off's, median [IQR] of the rounds' pairs.
"""

from __future__ import annotations

import httpx

from bench import compare
from bench.compare import Endpoint, Variant
from bench.stack import DEFAULT_SAMPLER, Stack, base_env, stack


def off(stack: Stack) -> dict[str, str]:
    """Metrics, access log, tracing and Sentry all off; warnings only."""
    return base_env(stack.database_url) | {
        "INKWELL_METRICS_ENABLED": "false",
        "INKWELL_ACCESS_LOG": "false",
        "INKWELL_LOG_LEVEL": "WARNING",
    }


def on(stack: Stack) -> dict[str, str]:
    """The chart's defaults, tracing and Sentry sending to live receivers."""
    return (
        base_env(stack.database_url)
        | DEFAULT_SAMPLER
        | {"OTEL_EXPORTER_OTLP_ENDPOINT": stack.otlp.endpoint, "INKWELL_SENTRY_DSN": stack.sentry.dsn}
    )


def endpoints(url: str) -> list[Endpoint]:
    """The article list and the newest article, anonymous: the reads most traffic is."""
    slug = httpx.get(f"{url}/api/articles?limit=1").json()["articles"][0]["slug"]
    return [Endpoint("articles-list", "/api/articles?limit=20"), Endpoint("article", f"/api/articles/{slug}")]


def main() -> None:
    opts = compare.command_line(__doc__ or "", connections=16, workers=1)
    with stack() as bench:
        variants = [Variant("off", off(bench)), Variant("on", on(bench))]
        compare.compare(
            "bench.observability",
            variants,
            endpoints,
            lambda chosen: compare.against_first(chosen, variants, "observability-"),
            opts=opts,
            stack=bench,
            prefix="observability-",
        )
        access_lines = sum(
            '"inkwell.access"' in line for line in (bench.logs / "on.log").read_text().splitlines()
        )
        print(f"# spans received: {len(bench.otlp.spans())}; access lines written by on: {access_lines}")


if __name__ == "__main__":
    main()
