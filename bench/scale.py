"""Cost that does not grow with the data: every endpoint on 1,000,000 articles against 10,000.

Both data sets are made by SQL at the real schema (bench/scale_data.py: the same shape at both
sizes, every kept count computed and checked) in one private PostgreSQL; one Inkwell server per
data set (one worker, cache off, observability as shipped), and wrk at 4 connections, interleaved
round by round as every comparison here is (bench/compare.py).

    make bench-scale    # or: uv run python -m bench.scale [--rounds N] [--only a,b] [--baseline DIR]

Prints the fill time and size of each data set, the table, and per endpoint
`BENCH scale-<endpoint> ratio=<p50 at 1M over p50 at 10k> p99_ratio=<the same for p99>` with a
verdict against the goal (p50 within 1.5x, p99 within 2x). For an endpoint over the goal, the
plan's dominant node of its slowest statement, from PostgreSQL's auto_explain, after the rounds.
A deep offset (100,000) is measured on the large set alone: its cost is the rows it skips.

`--baseline DIR` also runs both sizes from another checkout, each on its own databases migrated
by that checkout (its schema, its triggers or none): `after/before` ratios for every endpoint,
the writes among them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import argon2

import launch
from bench import compare, scale_data
from bench.compare import BEFORE, Endpoint, Samples, Variant
from bench.endpoints import favorite_script, sign_in
from bench.scale_data import LARGE, SMALL, Size
from bench.stack import INKWELL, Stack, base_env, cores, cpu_set
from tests.support.otlp import otlp_http_receiver
from tests.support.postgres import PostgresCluster, postgres_cluster
from tests.support.sentry import sentry_receiver

P50_GOAL, P99_GOAL = 1.5, 2.0
DEEP_OFFSET = 100_000
# Statements slower than this are explained after the rounds, for an endpoint over the goal.
EXPLAIN_MS = 5

PUBLISH_SCRIPT = """
local headers = {{["Authorization"] = "Token {token}", ["Content-Type"] = "application/json"}}
local n = 0
request = function()
  n = n + 1
  local body = '{{"article": {{"title": "Scale ' .. n .. '", "description": "d", "body": "b", '
    .. '"tagList": ["popular", "tag3", "bench' .. (n % 7) .. '"]}}}}'
  return wrk.format("POST", "/api/articles", headers, body)
end
"""
COMMENT_SCRIPT = """
local headers = {{["Authorization"] = "Token {token}", ["Content-Type"] = "application/json"}}
request = function()
  return wrk.format("POST", "/api/articles/article-7/comments", headers, '{{"comment": {{"body": "More"}}}}')
end
"""


@dataclass(frozen=True)
class DataSet:
    size: Size
    url: str
    database: str
    fill_seconds: float
    bytes: int


def _psql_json(cluster: PostgresCluster, sql: str, database: str) -> list[str]:
    return [line for line in cluster.psql(sql, database=database).splitlines() if line]


def build(cluster: PostgresCluster, size: Size, *, tree: Path | None, suffix: str = "") -> DataSet:
    """A database migrated by `tree`'s code (this checkout's when None), filled with `size`."""
    database = f"scale_{size.name}{suffix.replace('@', '_')}"
    cluster.psql(f"CREATE DATABASE {database}")
    url = cluster.url(database)
    env = {**os.environ, "INKWELL_DATABASE_URL": url}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    launch.run([*INKWELL, "migrate"], env=env, cwd=tree, timeout=600)
    kept = bool(
        _psql_json(
            cluster,
            "SELECT 1 FROM information_schema.columns WHERE table_name = 'tags' AND column_name = 'articles_count'",
            database,
        )
    )
    hashed = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(scale_data.PASSWORD)
    started = time.monotonic()
    cluster.psql(scale_data.fill_sql(size, hashed, kept_counts=kept), database=database)
    cluster.psql("VACUUM ANALYZE", database=database)
    seconds = time.monotonic() - started
    wrong = _psql_json(cluster, scale_data.check_sql(kept_counts=kept), database)
    if wrong:
        raise SystemExit(f"{database}: kept counts disagree with the rows: {wrong}")
    size_bytes = int(cluster.psql(f"SELECT pg_database_size('{database}')"))
    return DataSet(size, url, database, seconds, size_bytes)


@contextlib.contextmanager
def scale_stack(baseline: Path | None) -> Iterator[tuple[Stack, dict[str, DataSet]]]:
    machine = cores()
    os.sched_setaffinity(0, cpu_set(machine.load))
    logs = Path(tempfile.mkdtemp(prefix="inkwell-bench-scale-"))
    with postgres_cluster() as cluster, otlp_http_receiver() as otlp, sentry_receiver() as sentry:
        sets = {size.name: build(cluster, size, tree=None) for size in (SMALL, LARGE)}
        if baseline is not None:
            for size in (SMALL, LARGE):
                sets[size.name + BEFORE] = build(cluster, size, tree=baseline, suffix=BEFORE)
        for name, data in sets.items():
            print(
                f"# data set {name}: {data.size.articles:,} articles, {data.size.users:,} users, "
                f"{data.size.tags:,} tags, filled and analysed in {data.fill_seconds:.0f} s, "
                f"{data.bytes / 2**20:,.0f} MiB on disk"
            )
        yield Stack(machine, cluster, sets[SMALL.name].url, otlp, sentry, None, logs), sets


def variants(bench: Stack, sets: dict[str, DataSet], baseline: Path | None) -> list[Variant]:
    def env(data: DataSet) -> dict[str, str]:
        return base_env(data.url) | {
            "INKWELL_CACHE_ENABLED": "false",
            "OTEL_EXPORTER_OTLP_ENDPOINT": bench.otlp.endpoint,
        }

    result = [Variant(size.name, env(sets[size.name])) for size in (SMALL, LARGE)]
    if baseline is not None:
        result += [
            Variant(size.name + BEFORE, env(sets[size.name + BEFORE]), tree=baseline, copy_of=size.name)
            for size in (SMALL, LARGE)
        ]
    return result


def endpoints(bench: Stack, url: str) -> list[Endpoint]:
    api = url + "/api"
    token = sign_in(api, "reader@inkwell.test", scale_data.PASSWORD)
    signed_in = {"Authorization": f"Token {token}"}
    articles = [f"article-{i}" for i in range(1, 51)]
    scripts = {
        "favorite-unfavorite": favorite_script(bench.logs / "favorite-unfavorite.lua", articles, token)
    }
    for name, template in (("publish", PUBLISH_SCRIPT), ("comment", COMMENT_SCRIPT)):
        scripts[name] = bench.logs / f"{name}.lua"
        scripts[name].write_text(template.format(token=token))
    return [
        Endpoint("articles-list", "/api/articles?limit=20"),
        Endpoint("articles-list-signed-in", "/api/articles?limit=20", signed_in),
        Endpoint("offset-5000", "/api/articles?limit=20&offset=5000"),
        Endpoint("tag", "/api/articles?tag=popular&limit=20"),
        Endpoint("favorited", "/api/articles?favorited=fan&limit=20"),
        Endpoint("author", "/api/articles?author=prolific&limit=20"),
        Endpoint("feed", "/api/articles/feed?limit=20", signed_in),
        Endpoint("tags", "/api/tags"),
        Endpoint("comments", "/api/articles/hot-article/comments"),
        Endpoint("article", "/api/articles/hot-article"),
        Endpoint("favorite-unfavorite", "/api/articles/article-1/favorite", script=scripts["favorite-unfavorite"]),
        Endpoint("publish", "/api/articles", script=scripts["publish"]),
        Endpoint("comment", "/api/articles/article-7/comments", script=scripts["comment"]),
        Endpoint(f"offset-{DEEP_OFFSET}", f"/api/articles?limit=20&offset={DEEP_OFFSET}", variants=(LARGE.name,)),
    ]  # fmt: skip


def _median(samples: Samples, endpoint: str, variant: str, field: str) -> float:
    return float(statistics.median(getattr(s, field) for s in samples[(endpoint, variant)]))


def growth(samples: Samples, chosen: Sequence[Endpoint], suffix: str = "") -> list[str]:
    """Prints each endpoint's growth, 1M over 10k; returns the names of those over the goal."""
    over = []
    small, large = SMALL.name + suffix, LARGE.name + suffix
    for endpoint in chosen:
        if (endpoint.name, small) not in samples:
            continue
        p50 = [_median(samples, endpoint.name, v, "p50_ms") for v in (small, large)]
        p99 = [_median(samples, endpoint.name, v, "p99_ms") for v in (small, large)]
        ratio, p99_ratio = p50[1] / p50[0], p99[1] / p99[0]
        met = ratio <= P50_GOAL and p99_ratio <= P99_GOAL
        if not met and not suffix:
            over.append(endpoint.name)
        print(
            f"BENCH scale-{endpoint.name}{suffix} ratio={ratio:.2f} p99_ratio={p99_ratio:.2f} "
            f"p50_ms={p50[0]:.1f}/{p50[1]:.1f} p99_ms={p99[0]:.1f}/{p99[1]:.1f} "
            f"goal=p50<={P50_GOAL} p99<={P99_GOAL} {'met' if met else 'MISSED'}"
        )
    return over


def deep_offset(samples: Samples) -> None:
    name = f"offset-{DEEP_OFFSET}"
    if (name, LARGE.name) not in samples:
        return
    deep = _median(samples, name, LARGE.name, "p50_ms")
    page = _median(samples, "articles-list", LARGE.name, "p50_ms")
    per_row_us = (deep - page) * 1000 / DEEP_OFFSET
    print(
        f"# deep offset on {LARGE.name}: p50 {deep:.1f} ms at offset {DEEP_OFFSET:,} against {page:.1f} ms "
        f"for the first page: {per_row_us:.2f} us per row skipped (an index-only scan of the ids)"
    )


def explain(bench: Stack, sets: dict[str, DataSet], chosen: Sequence[Endpoint], over: Sequence[str]) -> None:
    """For each endpoint over the goal, on the large set: the dominant node of its slowest statement."""
    if not over:
        return
    data = sets[LARGE.name]
    settings = {
        "session_preload_libraries": "auto_explain",
        "auto_explain.log_min_duration": f"{EXPLAIN_MS}ms",
        "auto_explain.log_analyze": "on",
        "auto_explain.log_format": "json",
    }
    for key, value in settings.items():
        bench.cluster.psql(f"ALTER DATABASE {data.database} SET {key} = '{value}'")
    log = Path(bench.cluster.datadir).parent / "postgres.log"
    (variant,) = [v for v in variants(bench, sets, None) if v.name == LARGE.name]
    opts = compare.Options(
        rounds=1, seconds=1, warmup=0, connections=1, workers=1, same=False, baseline=None, only=()
    )
    with compare.servers([variant], opts=opts, stack=bench) as running:
        server = running[LARGE.name]
        for endpoint in (e for e in chosen if e.name in over):
            start = log.stat().st_size
            compare.measure({LARGE.name: server}, [endpoint], range(1), opts=opts, stack=bench)
            with log.open() as text:
                text.seek(start)
                plans = _plans(text.read())
            if not plans:
                print(
                    f"PLAN scale-{endpoint.name}: no statement over {EXPLAIN_MS} ms (the time is not the database's)"
                )
                continue
            ms, node, query = max(plans)
            print(
                f"PLAN scale-{endpoint.name}: slowest statement {ms:.1f} ms, dominant node {node}; {query[:160]}"
            )
    for key in settings:
        bench.cluster.psql(f"ALTER DATABASE {data.database} RESET {key}")


def _plans(log: str) -> list[tuple[float, str, str]]:
    """(duration ms, dominant node, query) of each auto_explain entry in a PostgreSQL log."""
    found = []
    decoder = json.JSONDecoder()
    position = 0
    while (key := log.find('"Query Text"', position)) != -1:
        start = log.rfind("{", 0, key)
        try:
            entry, end = decoder.raw_decode(log, start)
        except json.JSONDecodeError:
            position = key + 1
            continue
        position = end
        plan = entry["Plan"]
        found.append(
            (float(plan["Actual Total Time"]), _dominant(plan), " ".join(entry["Query Text"].split()))
        )
    return found


def _dominant(plan: dict[str, object]) -> str:
    """The node whose own time (its total less its children's) is the largest."""
    best: tuple[float, str] = (-1.0, "")

    def walk(node: dict[str, object]) -> None:
        nonlocal best
        children = node.get("Plans") or []
        assert isinstance(children, list)
        loops = float(node.get("Actual Loops", 1))  # type: ignore[arg-type]
        own = float(node["Actual Total Time"]) * loops  # type: ignore[arg-type]
        own -= sum(float(c["Actual Total Time"]) * float(c.get("Actual Loops", 1)) for c in children)
        where = node.get("Relation Name") or node.get("Index Name") or ""
        label = f"{node['Node Type']}{' on ' + str(where) if where else ''} ({own:.1f} ms, rows {node.get('Actual Rows')})"
        if own > best[0]:
            best = (own, label)
        for child in children:
            walk(child)

    walk(plan)
    return best[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    compare.arguments(parser, rounds=6, seconds=2, connections=4, workers=1)
    opts = compare.options(parser.parse_args())
    with scale_stack(opts.baseline) as (bench, sets):
        chosen: list[Endpoint] = []

        def setup(url: str) -> list[Endpoint]:
            chosen.extend(endpoints(bench, url))
            return chosen

        # The after/before copies are this script's own variants (their own databases), not
        # compare's, which would run the baseline's code on this checkout's databases.
        own = variants(bench, sets, opts.baseline)
        samples = compare.compare(
            "bench.scale", own, setup, lambda _chosen: [], opts=replace(opts, baseline=None), stack=bench
        )
        over = growth(samples, chosen)
        if opts.baseline is not None:
            growth(samples, chosen, BEFORE)
            for endpoint in chosen:
                for size in (SMALL, LARGE):
                    after, before = (endpoint.name, size.name), (endpoint.name, size.name + BEFORE)
                    if after in samples and before in samples:
                        ratio = compare.Ratio(
                            f"scale-{endpoint.name}-{size.name}", after, before, "after/before"
                        )
                        by_cpu, _ = compare.paired(samples, ratio)
                        p50 = _median(samples, *after, "p50_ms") / _median(samples, *before, "p50_ms")
                        print(
                            f"BENCH {ratio.label} {size.name}/{size.name}{BEFORE} (after/before) "
                            f"cpu={compare.spread(by_cpu)} p50_ratio={p50:.2f}"
                        )
        deep_offset(samples)
        explain(bench, sets, chosen, over)


if __name__ == "__main__":
    main()
