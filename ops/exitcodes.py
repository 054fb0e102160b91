"""Exit codes are the CLI's contract with scripts and CI, so they are named once, here."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0  # healthy, or the operation succeeded
    FAILED = 1  # the operation failed, or the cluster could not be asked
    USAGE = 2  # wrong invocation, or a mutation refused as asked (click uses 2 for usage too)
    DEGRADED = 3  # the release serves, but something needs attention
    UNKNOWN = 4  # there is no data to judge by (slo without request series), so no verdict
