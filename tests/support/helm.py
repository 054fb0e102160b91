"""Rendering the chart with the pinned helm, as Python objects the tests can assert on."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.kube import tools_bin

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "inkwell"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{tools_bin()}:{os.environ['PATH']}"}
    return subprocess.run(["helm", *args], env=env, capture_output=True, text=True, check=check, timeout=300)


def render(*value_files: Path, release: str = "ink", **sets: str) -> list[dict[str, Any]]:
    args = ["template", release, str(CHART), "--namespace", "apps"]
    for path in value_files:
        args += ["-f", str(path)]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    return [doc for doc in yaml.safe_load_all(helm(*args).stdout) if doc]


def one(objects: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(suffix)]
    return found


def kinds(objects: list[dict[str, Any]]) -> set[str]:
    return {o["kind"] for o in objects}
