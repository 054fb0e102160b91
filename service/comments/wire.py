"""Comments in Conduit's wire format, from the rows the comments service returns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row

from service import wire


def comment(row: Row[Any]) -> dict[str, Any]:
    return {"comment": wire.comment(row)}


def comments(rows: Sequence[Row[Any]]) -> dict[str, Any]:
    return {"comments": [wire.comment(row) for row in rows]}
