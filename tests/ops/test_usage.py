"""The command line itself: the console entry point runs, every command is listed, usage errors exit 2
before anything touches a cluster, and without the ops extra installed it says how to install it."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest
from typer.testing import CliRunner

from ops.cli import app
from tests.support.kube import ROOT

COMMANDS = [
    "status",
    "rollout",
    "history",
    "rollback",
    "scale",
    "restart",
    "migrate",
    "smoke",
    "diagnose",
    "slo",
]


def test_the_module_entry_point_lists_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ops", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Usage: inkwell-ops" in result.stdout
    for command in COMMANDS:
        assert f" {command} " in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["scale", "many"],
        ["scale", "-1"],
        ["rollout", "img:1", "--label", "no-equals-sign"],
        ["migrate", "--label", "=value"],
        ["rollback", "--to-revision", "0"],
        ["-o", "xml", "status"],
        ["smoke", "http://127.0.0.1:8000", "--internal", "maybe"],
        ["events", "--since", "ten minutes"],
        ["logs", "--since", "15"],
        ["teleport"],
    ],
    ids=lambda args: " ".join(args),
)
def test_usage_errors_exit_2_without_a_cluster(args: list[str]) -> None:
    result = CliRunner().invoke(app, ["--kubeconfig", "/nonexistent/kubeconfig", *args])
    assert result.exit_code == 2, result.output
    assert "no usable kubeconfig" not in result.output


def test_a_missing_kubeconfig_fails_with_exit_2_and_says_so() -> None:
    result = CliRunner().invoke(app, ["--kubeconfig", "/nonexistent/kubeconfig", "status"])
    assert result.exit_code == 2
    assert "no usable kubeconfig at /nonexistent/kubeconfig" in result.stderr


def test_without_the_ops_extra_the_console_script_says_how_to_install_it() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["inkwell-ops"] == "ops.__main__:main"
    # What the console script runs, in an interpreter where the Kubernetes client cannot be imported.
    program = (
        "import sys; sys.modules['kubernetes'] = None; sys.argv = ['inkwell-ops', 'status']; "
        "from ops.__main__ import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "inkwell-ops needs the ops extra (no module named 'kubernetes'): pip install 'inkwell[ops]'\n"
    )
