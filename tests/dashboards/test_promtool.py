"""The generated rule files are valid for Prometheus, and every alert fires, and stays quiet, as its runbook
says: `promtool check rules` and `promtool test rules` (tests/dashboards/promtool/) on synthetic series."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command

from dashboards.config import CONFIG
from dashboards.generate import FILES, ROOT
from ops.cli import app

RULE_FILES = sorted((FILES / "rules").glob("*.yaml"))
UNIT_TESTS = sorted((Path(__file__).parent / "promtool").glob("*.yaml"))
RUNBOOKS = ROOT / "docs" / "runbooks"


def promtool(*args: str | Path) -> str:
    """Runs promtool and returns its output; fails the test with that output when promtool does."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not installed: scripts/bootstrap.sh --test installs it (Debian: prometheus)")
    result = subprocess.run(
        [binary, *map(str, args)], capture_output=True, text=True, timeout=600, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool {' '.join(map(str, args))} failed:\n{output}"
    return output


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in load(path)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def alert_cases() -> list[dict[str, Any]]:
    return [
        case
        for path in UNIT_TESTS
        for test in load(path)["tests"]
        for case in test.get("alert_rule_test", [])
    ]


def rule_id(rule: dict[str, Any]) -> str:
    """An alert rule by its name, and by its windows for the burn-rate alerts (one name, four rules)."""
    labels = rule["labels"]
    return rule["alert"] + (f" {labels['long']}/{labels['short']}" if "long" in labels else "")


def case_ids(case: dict[str, Any]) -> set[str]:
    return {
        rule_id({"alert": case["alertname"], "labels": expected.get("exp_labels", {})})
        for expected in case.get("exp_alerts") or []
    }


def test_there_are_rules_and_unit_tests_to_run() -> None:
    # Empty globs would make every parametrized test below vanish instead of fail.
    assert {p.name for p in RULE_FILES} >= {"alerts.yaml", "recording.yaml"}
    assert UNIT_TESTS
    assert alert_rules()


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_generated_rule_file_passes_promtool_check(path: Path) -> None:
    output = promtool("check", "rules", path)
    assert "SUCCESS" in output, output


@pytest.mark.slow  # days of synthetic series: several seconds per file
@pytest.mark.parametrize("path", UNIT_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(path: Path) -> None:
    output = promtool("test", "rules", path)
    assert "SUCCESS" in output, output
    assert "FAILED" not in output, output


@pytest.mark.parametrize("path", UNIT_TESTS, ids=lambda p: p.name)
def test_unit_tests_read_the_generated_rule_files(path: Path) -> None:
    rule_files = {(path.parent / name).resolve() for name in load(path)["rule_files"]}
    assert rule_files, "a unit test file without rules tests nothing"
    assert rule_files <= {p.resolve() for p in RULE_FILES}


def test_every_alert_rule_has_a_unit_test_where_it_fires() -> None:
    fired = set().union(*(case_ids(case) for case in alert_cases()))
    missing = sorted({rule_id(rule) for rule in alert_rules()} - fired)
    assert missing == [], f"no promtool case expects these to fire: {missing}"


def test_every_alert_rule_has_a_unit_test_where_it_stays_quiet() -> None:
    rules = alert_rules()
    quiet: set[str] = set()
    for case in alert_cases():
        for rule in rules:
            if rule["alert"] == case["alertname"] and rule_id(rule) not in case_ids(case):
                quiet.add(rule_id(rule))
    missing = sorted({rule_id(rule) for rule in rules} - quiet)
    assert missing == [], f"no promtool case expects these to stay quiet: {missing}"


@pytest.mark.parametrize("rule", alert_rules(), ids=rule_id)
def test_alert_links_to_a_runbook_in_the_repository(rule: dict[str, Any]) -> None:
    name = rule["alert"]
    assert rule["annotations"]["runbook_url"] == f"{CONFIG.runbook_base_url}/{name}.md"
    runbook = (RUNBOOKS / f"{name}.md").read_text()
    assert runbook.startswith(f"# {name}\n")
    assert "inkwell-ops" in runbook
    assert f"({name}.md)" in (RUNBOOKS / "README.md").read_text()


def test_the_default_runbook_base_is_the_runbooks_shipped_with_the_charts_docs() -> None:
    # Not a repository of someone else's naming: the link resolves in the source the chart ships from.
    assert (ROOT / CONFIG.runbook_base_url).resolve() == RUNBOOKS
    for rule in alert_rules():
        assert (ROOT / rule["annotations"]["runbook_url"]).is_file()


def test_runbooks_name_only_commands_and_options_inkwell_ops_has() -> None:
    cli = get_command(app)
    commands = getattr(cli, "commands", {})
    named = 0
    for path in sorted(RUNBOOKS.glob("*.md")):
        for command, rest in re.findall(r"inkwell-ops ([a-z][a-z-]*)([^`\n#]*)", path.read_text()):
            assert command in commands, f"{path.name}: inkwell-ops has no command {command!r}"
            options = {opt for param in commands[command].params for opt in param.opts}
            unknown = sorted(set(re.findall(r"--[a-z][a-z-]*", rest)) - options)
            assert unknown == [], f"{path.name}: inkwell-ops {command} has no {unknown}"
            named += 1
    assert named > 20
