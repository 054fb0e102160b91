"""Comments in Conduit's wire format, from the rows the comments service returns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row

from service import wire


def _comment(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "createdAt": wire.timestamp(row.created_at),
        "updatedAt": wire.timestamp(row.updated_at),
        "body": row.body,
        "author": wire.author(row),
    }


def comment(row: Row[Any]) -> dict[str, Any]:
    return {"comment": _comment(row)}


def comments(rows: Sequence[Row[Any]]) -> dict[str, Any]:
    return {"comments": [_comment(row) for row in rows]}
