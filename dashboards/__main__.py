"""`python -m dashboards [--check]`: writes the dashboards and rules into charts/inkwell/files."""

from __future__ import annotations

import argparse
import sys

from dashboards.generate import stale, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed files are not up to date")
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale()
        for _path in outdated:
            pass
        if outdated:
            pass
        return 1 if outdated else 0
    for _path in write():
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
