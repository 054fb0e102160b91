"""Where the CLI's output goes and in what shape: results to stdout as tables, JSON or YAML; progress and
messages to stderr, live only on a terminal so that logs and CI see plain lines."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from enum import Enum, StrEnum
from typing import Any

import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)


class Format(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


def to_data(value: Any) -> Any:
    """Dataclasses, enums and datetimes as JSON-ready values, keys in the order the classes define them."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_data(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def render_json(value: Any) -> str:
    return json.dumps(to_data(value), indent=2)


def render_yaml(value: Any) -> str:
    return str(yaml.safe_dump(to_data(value), sort_keys=False, allow_unicode=True))


def age(seconds: float | None) -> str:
    """A duration the way kubectl prints ages: 45s, 3m12s, 47m, 5h, 3d."""
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


class Output:
    def __init__(
        self, fmt: Format = Format.table, *, stdout: Console | None = None, stderr: Console | None = None
    ):
        self.format = fmt
        self.out = stdout or Console(soft_wrap=False)
        if stdout is None and not self.out.is_terminal:
            # Tables as wide as a terminal's, not wrapped at a pipe's default of 80 columns.
            self.out.width = 160
        self.err = stderr or Console(stderr=True, soft_wrap=True)

    @property
    def live(self) -> bool:
        return self.err.is_terminal

    def result(self, value: Any, table: Callable[[Console], None]) -> None:
        # Machine formats bypass rich: no markup, emoji codes or wrapping may touch them.
        if self.format is Format.json:
            self.out.file.write(render_json(value) + "\n")
        elif self.format is Format.yaml:
            self.out.file.write(render_yaml(value))
        else:
            table(self.out)

    def say(self, message: str) -> None:
        """A line about what the CLI does, on stderr so it never mixes with -o json."""
        self.err.print(message, markup=False, highlight=False)

    def fail(self, message: str) -> None:
        self.err.print(f"error: {message}", markup=False, highlight=False, style="bold red")

    @contextmanager
    def progress(self, what: str, total: int) -> Iterator[Progresser]:
        if self.live:
            with Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=self.err,
                transient=False,
            ) as bar:
                task = bar.add_task(what, total=total, detail="")
                yield Progresser(
                    lambda done, total, detail: bar.update(task, completed=done, total=total, detail=detail)
                )
        else:
            last: list[str] = []

            def plain(done: int, total: int, detail: str) -> None:
                line = f"{what}: {detail or f'{done}/{total}'}"
                if not last or last[-1] != line:
                    last.append(line)
                    self.say(line)

            yield Progresser(plain)


class Progresser:
    def __init__(self, update: Callable[[int, int, str], None]) -> None:
        self._update = update

    def __call__(self, done: int, total: int, detail: str = "") -> None:
        self._update(done, total, detail)
