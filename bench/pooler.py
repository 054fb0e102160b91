"""What PgBouncer costs: the service straight to PostgreSQL against the same service through
PgBouncer in transaction mode (INKWELL_DATABASE_POOLER=pgbouncer), interleaved in one run.

On the benchmark data set in PostgreSQL, three servers (one worker each, observability as the chart
ships it, no cache: every request reaches the database):

- **direct**: straight to PostgreSQL, asyncpg's named statements prepared once per connection;
- **unnamed**: straight to PostgreSQL, but with the statements as through PgBouncer (unnamed,
  parsed again by PostgreSQL each time): what the prepared statements' way costs on its own;
- **pgbouncer**: through PgBouncer (Debian's 1.18, 20 server connections), as production past the
  database's connection limit runs it.

    make bench-pooler   # or: uv run python -m bench.pooler [--same] [--baseline DIR]

Prints the table of bench/compare.py with PostgreSQL's and PgBouncer's own CPU per request beside
the server's, `BENCH pooler-<endpoint> pgbouncer/direct cpu=<ratio> ...` (and unnamed/direct,
pgbouncer/unnamed) by the server's CPU, then the same ratios `...-all-in` by the CPU of the server,
PgBouncer and PostgreSQL together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import httpx

import launch.postgres
from bench import compare
from bench.compare import Endpoint, Ratio, Samples, Variant
from bench.endpoints import favorite_script, sign_in
from bench.stack import DEFAULT_SAMPLER, Stack, base_env, stack
from launch.pgbouncer import Pooling
from tests.support.pgbouncer import PgBouncer, pgbouncer

POOLED = {"INKWELL_DATABASE_POOLER": "pgbouncer"}
PREFIX = "pooler-"


def variants(bench: Stack, bouncer: PgBouncer) -> list[Variant]:
    observed = DEFAULT_SAMPLER | {"OTEL_EXPORTER_OTLP_ENDPOINT": bench.otlp.endpoint}
    return [
        Variant("direct", base_env(bench.database_url) | observed),
        Variant("unnamed", base_env(bench.database_url) | observed | POOLED),
        Variant("pgbouncer", base_env(bouncer.through(bench.database_url)) | observed | POOLED),
    ]


def endpoints(bench: Stack, url: str) -> list[Endpoint]:
    """The signed-in list, one article and the favourite write (favourite, then unfavourite, each
    of 50 articles in turn): each reaches PostgreSQL every time."""
    api = url + "/api"
    token = sign_in(api, "user001@inkwell.test")
    slugs = [a["slug"] for a in httpx.get(f"{api}/articles?limit=50").json()["articles"]]
    script = favorite_script(bench.logs / "write.lua", slugs, token)
    signed_in = {"Authorization": f"Token {token}"}
    return [
        Endpoint("articles-list-signed-in", "/api/articles?limit=20", signed_in),
        Endpoint("article", f"/api/articles/{slugs[0]}"),
        Endpoint("favorite-unfavorite", f"/api/articles/{slugs[0]}/favorite", script=script),
    ]


def ratios(chosen: Sequence[Endpoint]) -> list[Ratio]:
    """pgbouncer/direct (what it all costs), unnamed/direct (the statements' share of it) and
    pgbouncer/unnamed (PgBouncer's own hop)."""
    return [
        Ratio(f"{PREFIX}{e.name}", (e.name, numerator), (e.name, denominator))
        for e in chosen
        for numerator, denominator in (
            ("pgbouncer", "direct"),
            ("unnamed", "direct"),
            ("pgbouncer", "unnamed"),
        )
    ]


def all_in(samples: Samples) -> Samples:
    """The samples with the CPU time of PgBouncer and PostgreSQL added to the server's."""
    return {
        key: [replace(s, cpu_ns=s.cpu_ns + sum(s.beside_ns.values())) for s in runs]
        for key, runs in samples.items()
    }


def print_all_in(samples: Samples, chosen: Sequence[Endpoint]) -> None:
    print(
        "# The same ratios by the CPU of the server, PgBouncer and PostgreSQL together, per request: "
        "what the machine as a whole pays (PostgreSQL's background work included, so noisier)."
    )
    total = all_in(samples)
    for ratio in ratios(chosen):
        by_cpu, _ = compare.paired(total, ratio)
        print(
            f"BENCH {ratio.label}-all-in {ratio.expression} cpu={compare.spread(by_cpu)} "
            f"cpu_range={min(by_cpu):.3f}-{max(by_cpu):.3f} rounds={len(by_cpu)}"
        )


def print_pool(bouncer: PgBouncer) -> None:
    stats = next(row for row in bouncer.show("STATS") if row["database"] == "bench")
    transactions = int(stats["total_xact_count"])
    waited = int(stats["total_wait_time"]) / max(transactions, 1)
    print(
        f"# PgBouncer: {transactions} transactions, {stats['total_query_count']} statements, "
        f"{waited:.1f} us waited for a server connection per transaction on average"
    )


def main() -> None:
    # Fewer connections than the pool (10): more would measure the pool closing its overflow
    # connections and opening new ones (a fork, a login and asyncpg's type introspection each,
    # directly), not the statements.
    opts = compare.command_line(__doc__ or "", connections=8, workers=1)
    with stack() as bench, pgbouncer(bench.database_url, Pooling(pool_size=20)) as bouncer:
        postmaster = launch.postgres.pid(bench.cluster.datadir)
        assert postmaster is not None
        assert bouncer.process is not None
        bench.beside = {"PostgreSQL": postmaster, "PgBouncer": bouncer.process.pid}
        chosen: list[Endpoint] = []

        def found(url: str) -> list[Endpoint]:
            chosen.extend(endpoints(bench, url))
            return chosen

        samples = compare.compare(
            "bench.pooler", variants(bench, bouncer), found, ratios, opts=opts, stack=bench, prefix=PREFIX
        )
        print_all_in(samples, [e for e in chosen if (e.name, "direct") in samples])
        print_pool(bouncer)


if __name__ == "__main__":
    main()
