"""What reading on a replica costs the service: the same requests with every read on the primary,
and with INKWELL_DATABASE_READ_URL naming a streaming replica of it (docs/replicas.md), interleaved
in one run.

On the benchmark data set in PostgreSQL and a hot standby streaming from it, with Redis for the
users' last writes (as every pod but a developer's keeps them), two servers (one worker each,
observability as the chart ships it, no cache: every request reaches a database):

- **primary**: no replica configured;
- **replica**: reads on the replica once it has replayed what they must see.

    make bench-replica   # or: uv run python -m bench.replica [--same] [--baseline DIR]

Prints the table of bench/compare.py, with PostgreSQL's (the primary's and the replica's
postmasters, their backends included) and Redis's CPU per request beside the server's, and
`BENCH replica-<endpoint> replica/primary cpu=<ratio> ...` by the server's CPU. What a signed-in
read adds is the Redis GET for the reader's last write; a write adds one round trip for its
commit's position and two Redis commands; an anonymous read adds nothing but the decision.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

import launch.postgres
from bench import compare
from bench.compare import Endpoint, Ratio, Variant
from bench.endpoints import favorite_script, sign_in
from bench.stack import DEFAULT_SAMPLER, Stack, base_env, stack
from tests.support.replica import StreamingReplica, streaming_replica

PREFIX = "replica-"


def variants(bench: Stack, replica: StreamingReplica) -> list[Variant]:
    assert bench.redis is not None
    common = DEFAULT_SAMPLER | {
        "OTEL_EXPORTER_OTLP_ENDPOINT": bench.otlp.endpoint,
        "INKWELL_REDIS_URL": bench.redis.url,
        "INKWELL_CACHE_ENABLED": "false",
    }
    return [
        Variant("primary", base_env(bench.database_url) | common),
        Variant(
            "replica",
            base_env(bench.database_url) | common | {"INKWELL_DATABASE_READ_URL": replica.url("bench")},
        ),
    ]


def endpoints(bench: Stack, url: str) -> list[Endpoint]:
    """The signed-in list (a Redis GET more, then the replica), one article anonymous (the replica
    only) and the favourite write (favourite, then unfavourite, each of 50 articles in turn)."""
    api = url + "/api"
    token = sign_in(api, "user001@inkwell.test")
    slugs = [a["slug"] for a in httpx.get(f"{api}/articles?limit=50").json()["articles"]]
    script = favorite_script(bench.logs / "write.lua", slugs, token)
    return [
        Endpoint("articles-list-signed-in", "/api/articles?limit=20", {"Authorization": f"Token {token}"}),
        Endpoint("article", f"/api/articles/{slugs[0]}"),
        Endpoint("favorite-unfavorite", f"/api/articles/{slugs[0]}/favorite", script=script),
    ]


def ratios(chosen: Sequence[Endpoint]) -> list[Ratio]:
    return [Ratio(f"{PREFIX}{e.name}", (e.name, "replica"), (e.name, "primary")) for e in chosen]


def main() -> None:
    opts = compare.command_line(__doc__ or "", connections=8, workers=1)
    with stack(redis=True) as bench, streaming_replica(bench.cluster) as replica:
        replica.wait_caught_up()
        postmasters = {
            "PostgreSQL": launch.postgres.pid(bench.cluster.datadir),
            "replica": launch.postgres.pid(replica.datadir),
        }
        bench.beside = {name: pid for name, pid in postmasters.items() if pid is not None}
        chosen: list[Endpoint] = []

        def found(url: str) -> list[Endpoint]:
            chosen.extend(endpoints(bench, url))
            return chosen

        compare.compare(
            "bench.replica", variants(bench, replica), found, ratios, opts=opts, stack=bench, prefix=PREFIX
        )


if __name__ == "__main__":
    main()
