"""Log lines as tests read them, and the process-wide logging state saved and put back around a test."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import structlog

_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "inkwell.access")


@contextlib.contextmanager
def preserved_logging() -> Iterator[None]:
    """Whatever configure_logging changes (root handlers and level, uvicorn's loggers, structlog's
    configuration) is as it was after the block, so a console or DEBUG setup does not leak."""
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    saved = {
        name: (list(logger.handlers), list(logger.filters), logger.level, logger.propagate, logger.disabled)
        for name in _LOGGERS
        for logger in [logging.getLogger(name)]
    }
    saved_structlog = structlog.get_config()
    try:
        yield
    finally:
        root.handlers[:] = saved_root[0]
        root.setLevel(saved_root[1])
        for name, (handlers, filters, level, propagate, disabled) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.filters[:] = filters
            logger.setLevel(level)
            logger.propagate = propagate
            logger.disabled = disabled
        structlog.configure(**saved_structlog)
        structlog.contextvars.clear_contextvars()


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty line of `text` as a JSON object; fails on the first line that is not one."""
    lines = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError as error:
            raise AssertionError(f"not a JSON line: {line!r}") from error
        assert isinstance(parsed, dict), f"not a JSON object: {line!r}"
        lines.append(parsed)
    return lines


def access_lines(lines: Iterable[dict[str, Any]], request_id: str | None = None) -> list[dict[str, Any]]:
    return [
        line
        for line in lines
        if line.get("logger") == "inkwell.access"
        and (request_id is None or line.get("request_id") == request_id)
    ]
