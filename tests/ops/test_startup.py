"""What makes the CLI feel instant: `--help`, a subcommand's help and a usage error import no Kubernetes
module (it takes about a second: ops.lazy defers it to the first command that talks to a cluster), and
shell completion answers through typer's own protocol, also without it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.kube import ROOT


def _imported(
    *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Runs `python -X importtime -m ops ARGS`; returns the result and every module it imported."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ops", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env={**os.environ, "INKWELL_OPS_CONFIG": os.devnull, **(env or {})},
    )
    modules = {
        line.rpartition("|")[2].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return result, modules


def _kubernetes(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m == "kubernetes" or m.startswith(("kubernetes.", "urllib3")))


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--help"], 0),
        (["status", "--help"], 0),
        (["releases", "--help"], 0),
        (["scale", "many"], 2),
        (["--request-timeout", "soon", "status"], 2),
        (["teleport"], 2),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else str(value),
)
def test_help_and_usage_errors_import_no_kubernetes_module(args: list[str], code: int) -> None:
    result, modules = _imported("--kubeconfig", "/nonexistent/kubeconfig", *args)
    assert result.returncode == code, result.stderr[-2000:]
    assert "typer" in modules  # the measurement itself works
    assert _kubernetes(modules) == []
    assert "httpx" not in modules


def test_a_command_that_talks_to_a_cluster_does_import_it() -> None:
    """The other side of the test above: the measurement would see the client if it were loaded."""
    result, modules = _imported("--kubeconfig", "/nonexistent/kubeconfig", "status")
    assert result.returncode == 2
    assert "kubernetes" in modules
    # httpx is for smoke and slo only (a fifth of a second): the cluster commands never load it.
    assert "httpx" not in modules


def test_the_help_lists_releases_and_the_global_request_timeout() -> None:
    result, _ = _imported("--help")
    assert " releases " in result.stdout
    assert "--request-timeout" in result.stdout
    assert "--install-completion" in result.stdout


def test_shell_completion_completes_commands_and_options() -> None:
    """What the script from `--show-completion bash` runs at each <TAB>: typer's completion protocol."""

    def complete(words: str) -> list[str]:
        result, modules = _imported(
            env={
                "_INKWELL_OPS_COMPLETE": "complete_bash",
                "_TYPER_COMPLETE_ARGS": words,
                "COMP_WORDS": words,
                "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
            }
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert _kubernetes(modules) == []
        return result.stdout.split()

    assert complete("inkwell-ops rel") == ["releases"]
    assert "status" in complete("inkwell-ops ")
    assert "--watch" in complete("inkwell-ops status --")


def test_the_completion_script_for_bash() -> None:
    """What `--install-completion` writes and `--show-completion` prints, for bash: the script that runs
    the completion above at each <TAB>."""
    result, _ = _imported(env={"_INKWELL_OPS_COMPLETE": "source_bash"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "_INKWELL_OPS_COMPLETE=complete_bash" in result.stdout
    assert "complete -o default -F" in result.stdout
