"""A module imported on first use, for the CLI's heavy dependencies: the Kubernetes client's base alone
takes about 0.3 s to import, and `--help`, a usage error or `smoke` never need it. Under TYPE_CHECKING the
CLI imports the real modules, so mypy sees them; at run time it holds one of these instead."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class Lazy:
    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        state = "loaded" if self._module is not None else "not loaded"
        return f"<lazy module {self._name!r} ({state})>"
