"""What can be checked of the image without a Docker engine: the Dockerfile copies files that exist
and that .dockerignore lets through, installs the service without the ops CLI's Kubernetes client, runs
as a numeric non-root user, and its exec-form entrypoint is an `inkwell serve` command line that really
parses."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
UV = ROOT / ".tools" / "venv" / "bin" / "uv"  # the bootstrap's


def _stages() -> list[list[str]]:
    """Instructions per stage, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    stages: list[list[str]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def _ignored(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; `!pattern` re-includes."""
    ignored = False
    for pattern in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = pattern.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            ignored = not negate
    return ignored


def test_every_file_the_build_copies_exists_and_is_in_the_build_context() -> None:
    copies = [
        line
        for stage in _stages()
        for line in stage
        if line.upper().startswith("COPY ") and "--from" not in line
    ]
    assert copies
    for line in copies:
        sources = [part for part in line.split()[1:-1] if not part.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not _ignored(source.rstrip("/")), f"{source} is excluded by .dockerignore"
    assert _ignored("tests/conftest.py")
    assert _ignored(".venv")


def test_the_image_installs_the_service_without_the_ops_extra() -> None:
    syncs = [line for stage in _stages() for line in stage if "uv sync" in line]
    assert syncs
    for line in syncs:
        assert "--no-dev" in line, line
        assert "--extra" not in line, line
        assert "--all-extras" not in line, line
    # What those installs take from the lock: the project's own dependencies, no group, no extra.
    exported = subprocess.run(
        [str(UV), "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = {line.split("==")[0] for line in exported.splitlines() if "==" in line and line[0].isalpha()}
    assert {"fastapi", "uvicorn", "typer"} <= installed
    assert "kubernetes" not in installed


def test_the_final_stage_runs_as_a_numeric_non_root_user_without_build_tools() -> None:
    final = _stages()[-1]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users
    uid = users[-1].split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0
    runs = " ".join(line for line in final if line.upper().startswith("RUN "))
    for tool in ("pip install", "uv ", "apt-get install", "gcc", "build-essential"):
        assert tool not in runs, tool
    assert any("--from=build" in line and "/app/.venv" in line for line in final)


def test_the_entrypoint_is_an_exec_form_inkwell_serve_that_parses() -> None:
    (entrypoint,) = [line for line in _stages()[-1] if line.upper().startswith("ENTRYPOINT ")]
    argv = json.loads(entrypoint.split(None, 1)[1])
    assert argv[:2] == ["inkwell", "serve"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["inkwell"] == "service.cli:app"
    # Every option the entrypoint passes is one `inkwell serve` accepts.
    help_text = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for option in (arg for arg in argv[2:] if arg.startswith("--")):
        assert option in help_text, option


def test_the_image_pins_the_same_uv_as_the_bootstrap() -> None:
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    (wanted,) = re.findall(r"^UV_VERSION=(\S+)$", bootstrap, re.MULTILINE)
    assert f"ARG UV_VERSION={wanted}" in DOCKERFILE
