"""`python -m bench.serve --app module:factory`: serves an ASGI app factory exactly as `inkwell
serve` serves Inkwell's (service.serving.serve: uvloop, httptools, the workers' garbage-collector
tuning, multiprocess metrics), so that a comparison of two apps is not also one of two servers."""

from __future__ import annotations

import argparse

from service.config import get_settings
from service.observability.logging import configure_logging
from service.serving import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__)
    parser.add_argument(
        "--app", required=True, help='the import string of an ASGI app factory, "module:factory"'
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    # As `inkwell serve` does: bad settings fail before workers fork; the supervisor logs in JSON too.
    settings = get_settings()
    configure_logging(settings)
    serve(settings, host=args.host, port=args.port, workers=args.workers, reload=False, app=args.app)


if __name__ == "__main__":
    main()
