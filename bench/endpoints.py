"""Inkwell's endpoints against a bare FastAPI app, side by side in one run.

On the benchmark data set (`inkwell seed`: 50 users, 500 articles of about 1.6 KB with 1 to 4 of 20
tags, 1,000 comments, 1,500 favourites, 250 follows, seed 42) in PostgreSQL, the service runs as in
staging (`inkwell serve --workers 2`, its cache in Redis, observability as the chart ships it:
metrics, access log, tracing with its default sampler exporting to a live OTLP receiver); the bare
app (bench/bare.py) runs under uvicorn with the same workers, loop and HTTP parser. wrk, PostgreSQL,
Redis and the receivers run on the other cores.

    make bench          # or: uv run python -m bench.endpoints [--same] [--baseline DIR]

Prints the table of bench/compare.py, `BENCH <endpoint> inkwell/bare cpu=<ratio> rps=<ratio>` per
endpoint (against the bare app's GET /), and `GOAL <endpoint> ...`: whether each meets its goal.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import httpx

from bench import compare
from bench.compare import Endpoint, Options, Ratio, Samples, Variant
from bench.stack import DEFAULT_SAMPLER, Stack, base_env, stack

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
# Each endpoint's throughput over the bare app's, at least; and p99 under 100 ms for all.
GOALS = {
    "articles-list": 0.10,
    "article": 0.10,
    "articles-list-signed-in": 0.04,
    "tags": 0.25,
    "favorite-unfavorite": 0.03,
}
P99_GOAL_MS = 100.0
BARE = [sys.executable, "-m", "uvicorn", "bench.bare:app", "--loop", "uvloop", "--http", "httptools"]
BARE += ["--no-access-log", "--log-level", "warning"]


def variants(bench: Stack) -> list[Variant]:
    env = (
        base_env(bench.database_url) | DEFAULT_SAMPLER | {"OTEL_EXPORTER_OTLP_ENDPOINT": bench.otlp.endpoint}
    )
    if bench.redis is not None:
        env["INKWELL_REDIS_URL"] = bench.redis.url
    return [Variant("inkwell", env), Variant("bare", base_env(bench.database_url), command=tuple(BARE))]


def sign_in(api: str, email: str, password: str = "inkwell-demo") -> str:  # noqa: S107 - the seed's demo password
    """A user's token, from the server's own login."""
    login = {"user": {"email": email, "password": password}}
    return str(httpx.post(f"{api}/users/login", json=login, timeout=30).json()["user"]["token"])


def favorite_script(path: Path, slugs: Sequence[str], token: str) -> Path:
    """WRITE_SCRIPT over these articles, signed in with `token`, written to `path`."""
    paths = ", ".join(f'"/api/articles/{each}/favorite"' for each in slugs)
    path.write_text(WRITE_SCRIPT.format(paths=paths, token=token))
    return path


def endpoints(bench: Stack, url: str) -> list[Endpoint]:
    """The bare app's one answer, then the five of Inkwell's: anonymous and signed-in reads, a write."""
    api = url + "/api"
    slug = httpx.get(f"{api}/articles?limit=1").json()["articles"][0]["slug"]
    token = sign_in(api, "user001@inkwell.test")
    slugs = [a["slug"] for a in httpx.get(f"{api}/articles?limit=50").json()["articles"]]
    script = favorite_script(bench.logs / "write.lua", slugs, token)
    ours = ("inkwell",)
    return [
        Endpoint("bare", "/", variants=("bare",)),
        Endpoint("articles-list", "/api/articles?limit=20", variants=ours),
        Endpoint("article", f"/api/articles/{slug}", variants=ours),
        Endpoint(
            "articles-list-signed-in",
            "/api/articles?limit=20",
            {"Authorization": f"Token {token}"},
            variants=ours,
        ),
        Endpoint("tags", "/api/tags", variants=ours),
        Endpoint("favorite-unfavorite", f"/api/articles/{slug}/favorite", script=script, variants=ours),
    ]


def against_bare(chosen: Sequence[Endpoint]) -> list[Ratio]:
    return [Ratio(e.name, (e.name, "inkwell"), ("bare", "bare")) for e in chosen if e.name != "bare"]


def print_goals(samples: Samples, opts: Options) -> None:
    print(
        f"# Goals: each endpoint's throughput at least the given share of the bare app's, and p99 under "
        f"{P99_GOAL_MS:.0f} ms (medians of the rounds; cpu_ratio beside it for comparison)"
    )
    for suffix in ["", compare.BEFORE] if opts.baseline is not None else [""]:
        for name, goal in GOALS.items():
            ours, bare = (name, "inkwell" + suffix), ("bare", "bare" + suffix)
            if ours not in samples or bare not in samples:
                continue
            by_cpu, by_rps = compare.paired(samples, Ratio(name, ours, bare))
            ratio, p99 = statistics.median(by_rps), statistics.median(s.p99_ms for s in samples[ours])
            print(
                f"GOAL {name}{suffix} ratio={ratio:.3f} cpu_ratio={statistics.median(by_cpu):.3f} "
                f"p99_ms={p99:.1f} goal={goal:.2f} {'met' if ratio >= goal and p99 < P99_GOAL_MS else 'MISSED'}"
            )


def main() -> None:
    opts = compare.command_line(__doc__ or "", connections=8, workers=2)
    if opts.only:  # every ratio here divides by the bare app's
        opts = replace(opts, only=(*opts.only, "bare"))
    with stack(redis=True) as bench:
        samples = compare.compare(
            "bench.endpoints",
            variants(bench),
            lambda url: endpoints(bench, url),
            against_bare,
            opts=opts,
            stack=bench,
        )
        print_goals(samples, opts)
        print(f"# spans received: {len(bench.otlp.spans())}")


if __name__ == "__main__":
    main()
