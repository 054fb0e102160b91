"""`status --watch`: the same answer again every few seconds until Ctrl-C, which is how an operator stops
watching, not a failure (exit 0). On a terminal each refresh replaces the last, as watch(1) does; written
to a pipe or a file, each follows the one before, so a log keeps the whole sequence (with `-o json`, one
JSON document per refresh, as `kubectl get -w -o json` writes)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from ops.output import Format, Output


def every(interval: float, refresh: Callable[[], None], out: Output) -> None:
    """Calls `refresh` every `interval` seconds (from the start of one to the start of the next) until
    interrupted; returns when Ctrl-C (SIGINT) arrives."""
    replace = out.out.is_terminal and out.format is Format.table
    try:
        while True:
            started = time.monotonic()
            if replace:
                out.out.clear()
            stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            out.say(f"every {interval:g}s, {stamp} (Ctrl-C to stop)")
            refresh()
            out.out.file.flush()
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        return
