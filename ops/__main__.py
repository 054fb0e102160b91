"""`inkwell-ops` and `python -m ops` (for when the console script is not on PATH: a checkout, a debug pod),
which say in one line how to install the ops extra when it is missing rather than show a traceback."""

from __future__ import annotations

import sys

# The top-level modules of the `ops` extra in pyproject.toml.
EXTRA = {"kubernetes", "rich", "yaml"}


def main() -> None:
    # The Kubernetes client is imported on first use (ops.lazy), so a missing extra surfaces while a
    # command runs, not only at import: both are covered.
    try:
        from ops.cli import app

        app(prog_name="inkwell-ops")
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in EXTRA:
            raise
        sys.exit(f"inkwell-ops needs the ops extra (no module named {missing!r}): pip install 'inkwell[ops]'")


if __name__ == "__main__":
    main()
