"""How results look: ages as kubectl prints them, JSON and YAML from the result dataclasses, the tables and
the plain progress lines a non-terminal gets. Formatting only; everything that talks to a cluster is tested
on a real one."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import httpx
import pytest
import yaml
from rich.console import Console

from ops import views
from ops.diagnose import Finding
from ops.exitcodes import Exit
from ops.model import Condition, Revision
from ops.output import Format, Output, age, render_json, render_yaml
from ops.rollout import diff, image_tag
from ops.slo import Burn, SloReport
from ops.smoke import Internal, is_service_probe, resolve_internal

WHEN = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200, force_terminal=False, color_system=None), buffer


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "-"), (-3, "0s"), (0, "0s"), (119, "119s"), (125, "2m5s"), (240, "4m"), (600, "10m"),
     (179 * 60, "179m"), (3 * 3600, "3h"), (47 * 3600, "47h"), (3 * 86400 + 5, "3d")],
)  # fmt: skip
def test_ages_read_like_kubectls(seconds: float | None, shown: str) -> None:
    assert age(seconds) == shown


def test_exit_codes_are_the_documented_ones() -> None:
    assert [(e.name, int(e)) for e in Exit] == [
        ("OK", 0), ("FAILED", 1), ("USAGE", 2), ("DEGRADED", 3), ("UNKNOWN", 4)
    ]  # fmt: skip


def test_json_and_yaml_render_dataclasses_datetimes_and_enums_in_field_order() -> None:
    revision = Revision(3, "web-abc", {"inkwell": "img:1"}, WHEN, 2, 2, True, template_hash="abc")
    value = {"format": Format.json, "revisions": [revision], "at": WHEN}
    data = json.loads(render_json(value))
    assert data == {
        "format": "json",
        "revisions": [
            {"revision": 3, "replicaset": "web-abc", "images": {"inkwell": "img:1"},
             "created": "2026-11-26T12:00:00+00:00", "replicas": 2, "ready": 2, "current": True,
             "change_cause": "", "template_hash": "abc", "outcome": "", "outcome_reason": "",
             "current_since": None, "rolled_back_at": None}
        ],
        "at": "2026-11-26T12:00:00+00:00",
    }  # fmt: skip
    assert list(data["revisions"][0]) == list(yaml.safe_load(render_yaml(value))["revisions"][0])
    assert yaml.safe_load(render_yaml(value)) == data


def test_findings_table_has_one_row_per_problem_with_its_advice() -> None:
    console, buffer = _console()
    views.findings(
        console, [Finding("HpaAtMax", "horizontalpodautoscaler/web", "pinned at 10", "raise maxReplicas")]
    )
    lines = buffer.getvalue().splitlines()
    assert lines[0].strip() == "1 problem(s)"
    assert lines[1].split() == ["PROBLEM", "OBJECT", "DETAIL", "ADVICE"]
    assert lines[2].split(maxsplit=2)[:2] == ["HpaAtMax", "horizontalpodautoscaler/web"]
    assert lines[2].rstrip().endswith("raise maxReplicas")
    console, buffer = _console()
    views.findings(console, [])
    assert buffer.getvalue() == "No problems found.\n"


def test_history_marks_the_current_revision() -> None:
    console, buffer = _console()
    revisions = [
        Revision(1, "web-a", {"inkwell": "img:1"}, WHEN, 0, 0, False),
        Revision(2, "web-b", {"inkwell": "img:2"}, WHEN, 2, 1, True),
    ]
    views.history(console, revisions, now=datetime(2026, 11, 26, 12, 5, tzinfo=UTC))
    rows = [line.split() for line in buffer.getvalue().splitlines()[2:]]
    # No record (CURRENT SINCE, ROLLOUT): revisions inkwell-ops did not wait for show "-".
    assert rows == [
        ["1", "web-a", "img:1", "5m", "-", "0/0", "-"],
        ["2", "web-b", "img:2", "5m", "-", "1/2", "-", "current"],
    ]


def _slo() -> SloReport:
    return SloReport(
        namespace="shop", release="ink", window="30d", requests_per_second=12.345, availability=0.9995,
        availability_target=0.999, availability_budget_left=0.5, latency_sli=None, latency_target=0.99,
        latency_threshold_seconds=0.25, latency_budget_left=None, p50_seconds=0.004, p95_seconds=0.0875,
        p99_seconds=None, burn_rates={"5m": {"availability": 0.5, "latency": None}},
        alerts=[Burn("availability", "1h", "5m", 14.4, "page", 15.0, 16.0, True),
                Burn("latency", "1h", "5m", 14.4, "page", None, None, False)],
    )  # fmt: skip


def test_slo_tables_show_percentages_milliseconds_burn_rates_and_missing_data() -> None:
    console, buffer = _console()
    views.slo(console, _slo())
    text = buffer.getvalue()
    lines = [line.split() for line in text.splitlines()]
    assert ["availability", "(non-5xx)", "99.9%", "99.950%", "50.0%"] in lines
    assert ["latency", "(<", "0.25", "s)", "99.0%", "no", "data", "no", "data"] in lines
    assert "requests/s (5m) 12.35   p50 4 ms   p95 88 ms   p99 no data" in text
    assert ["5m", "0.50x", "-"] in lines
    assert ["availability", "1h/5m", "14.4x", "page", "FIRING"] in lines
    # No data is no verdict: never "ok".
    assert ["latency", "1h/5m", "14.4x", "page", "unknown", "(no", "data)"] in lines


def test_plain_progress_prints_a_line_only_when_it_changes() -> None:
    out_buffer, err_buffer = io.StringIO(), io.StringIO()
    output = Output(
        Format.table,
        stdout=Console(file=out_buffer, force_terminal=False),
        stderr=Console(file=err_buffer, force_terminal=False, width=200),
    )
    assert output.live is False
    with output.progress("deployment/web", total=2) as progress:
        progress(0, 2, "0 of 2 updated")
        progress(0, 2, "0 of 2 updated")
        progress(2, 2, "")
    assert err_buffer.getvalue().splitlines() == ["deployment/web: 0 of 2 updated", "deployment/web: 2/2"]
    assert out_buffer.getvalue() == ""


def test_a_template_diff_is_a_unified_diff_of_yaml() -> None:
    change = diff({"image": "img:1", "name": "inkwell"}, {"image": "img:2", "name": "inkwell"}, name="t")
    assert change.splitlines() == [
        "--- t (live)",
        "+++ t (after)",
        "@@ -1,2 +1,2 @@",
        "-image: img:1",
        "+image: img:2",
        " name: inkwell",
    ]
    assert diff({"a": 1}, {"a": 1}, name="t") == ""


@pytest.mark.parametrize(
    ("image", "tag"),
    [("ghcr.io/inkwell/inkwell:0.2.0", "0.2.0"), ("localhost:5000/inkwell", "latest"), ("inkwell", "latest"),
     ("inkwell:1.0@sha256:" + "a" * 64, "1.0"), ("inkwell@sha256:" + "a" * 64, "latest")],
)  # fmt: skip
def test_the_version_label_is_the_images_tag(image: str, tag: str) -> None:
    assert image_tag(image) == tag


@pytest.mark.parametrize(
    ("status", "body", "service"),
    [(200, b'{"status": "ok"}', True),
     (503, b'{"status": "unavailable", "errors": {"database": ["unreachable (OSError)"]}}', True),
     (404, b"<html><body>404 Not Found</body></html>", False),
     (503, b"<html><body>503 Service Temporarily Unavailable</body></html>", False),
     (200, b"<html>a catch-all page</html>", False)],
)  # fmt: skip
def test_the_service_is_known_by_its_readyz_answer_not_by_its_address(
    status: int, body: bytes, service: bool
) -> None:
    assert is_service_probe(httpx.Response(status, content=body)) is service


def test_an_explicit_expectation_is_not_asked_for() -> None:
    # A client whose every request would fail: nothing is sent when the mode is given.
    with httpx.Client(base_url="http://127.0.0.1:9") as http:
        assert resolve_internal(http, Internal.skip) is Internal.skip
        assert resolve_internal(http, Internal.hidden) is Internal.hidden


def test_status_conditions_are_plain_data() -> None:
    assert json.loads(render_json(Condition("Ready", "True"))) == {
        "type": "Ready", "status": "True", "reason": "", "message": "", "since": None
    }  # fmt: skip
