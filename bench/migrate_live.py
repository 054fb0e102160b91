"""Migration 0002 on a live million-article database, while the previous version serves writes.

A PostgreSQL with the large data set at the previous schema (bench/scale_data.py, migrated by the
checkout in `--baseline DIR`), that checkout's server taking signed-in reads and favourites from
wrk the whole time (favourites, publications with tags), and this checkout's `inkwell migrate` run in the middle. Prints how long the
migration took, what the clients saw while it ran (failed requests, the slowest request), and
whether every count the migration keeps agrees with the rows afterwards, the writes the previous
version made during the migration included (the triggers count those; nothing is recounted).

    uv run python -m bench.migrate_live --baseline DIR [--articles N]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import launch
from bench import scale, scale_data
from bench.endpoints import favorite_script, sign_in
from bench.stack import INKWELL, base_env, cores, cpu_set
from tests.support.postgres import postgres_cluster

_MAX = re.compile(r"^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\b", re.MULTILINE)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(url: str, seconds: int, cpus: str, script: Path | None, headers: dict[str, str]) -> dict[str, str]:
    argv = [launch.binary("wrk", "wrk"), "-t1", "-c4", f"-d{seconds}s", "--latency", "--timeout", "60s"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    if script is not None:
        argv += ["-s", str(script)]
    result = subprocess.run(launch.pinned([*argv, url], cpus), capture_output=True, text=True, check=False)
    return {"output": result.stdout}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of the previous version")
    parser.add_argument("--articles", type=int, default=scale_data.LARGE.articles)
    parser.add_argument(
        "--seconds", type=int, default=240, help="how long wrk runs; the migration starts after 10 s"
    )
    args = parser.parse_args()
    machine = cores()
    os.sched_setaffinity(0, cpu_set(machine.load))
    logs = Path(tempfile.mkdtemp(prefix="inkwell-bench-migrate-"))
    size = scale_data.Size("live", args.articles)
    with postgres_cluster() as cluster:
        data = scale.build(cluster, size, tree=args.baseline.resolve(), suffix="_before")
        print(f"# {size.articles:,} articles at the previous schema, filled in {data.fill_seconds:.0f} s")
        port = launch.free_port()
        env = base_env(data.url) | {
            "INKWELL_CACHE_ENABLED": "false",
            "PYTHONPATH": str(args.baseline.resolve()),
        }
        argv = [*INKWELL, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        with launch.running(
            argv,
            what="the previous version's server",
            log=logs / "server.log",
            ready=launch.listening(port),
            env=env,
            cwd=args.baseline.resolve(),
            cpus=machine.server,
        ):
            url = f"http://127.0.0.1:{port}"
            token = sign_in(f"{url}/api", "reader@inkwell.test", scale_data.PASSWORD)
            script = favorite_script(logs / "favorite.lua", [f"article-{i}" for i in range(1, 51)], token)
            publish = logs / "publish.lua"
            publish.write_text(scale.PUBLISH_SCRIPT.format(token=token))
            signed_in = {"Authorization": f"Token {token}"}
            results: dict[str, dict[str, str]] = {}
            loads = {
                "favourites": (f"{url}/api/articles/article-1/favorite", script, {}),
                "publications": (f"{url}/api/articles", publish, {}),
                "signed-in reads": (f"{url}/api/articles/article-7", None, signed_in),
            }
            threads = [
                threading.Thread(
                    target=lambda name=name, spec=spec: results.__setitem__(
                        name, _wrk(spec[0], args.seconds, machine.load, spec[1], spec[2])
                    )
                )
                for name, spec in loads.items()
            ]
            for thread in threads:
                thread.start()
            time.sleep(10)
            started = time.monotonic()
            launch.run(
                [*INKWELL, "migrate"], env={**os.environ, "INKWELL_DATABASE_URL": data.url}, timeout=3600
            )
            took = time.monotonic() - started
            print(f"# migration 0002 took {took:.0f} s while the previous version served")
            for thread in threads:
                thread.join()
        for name, result in results.items():
            output = result["output"]
            slowest = _MAX.search(output)
            failed = "Non-2xx or 3xx responses" in output or "Socket errors" in output
            requests = re.search(r"(\d+) requests in", output)
            print(
                f"MIGRATE {name}: requests={requests[1] if requests else 0} "
                f"failed={'yes' if failed else 'none'} "
                f"slowest_ms={float(slowest[1]) * _UNITS[slowest[2]] if slowest else float('nan'):.0f}"
            )
            if failed:
                print(output)
        wrong = [
            line for line in cluster.psql(scale_data.check_sql(), database=data.database).splitlines() if line
        ]
        print(f"MIGRATE counts after: {'consistent' if not wrong else 'INCONSISTENT ' + ', '.join(wrong)}")


if __name__ == "__main__":
    main()
