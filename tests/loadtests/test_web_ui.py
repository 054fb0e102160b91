"""locust's web UI has fields for the shape, its steps and the gates, and a run started there uses
them; the HTML report, the first thing the README has people open, carries the SLO verdict on top.
A real locust against a real `inkwell serve` (SQLite), driven through the web UI's own form."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from launch import free_port, wait_until
from loadtests.shapes import SHAPES
from loadtests.staging import ROOT
from tests.support.server import ServerProcess, running_server, server_env

pytestmark = pytest.mark.slow

FIELDS = {
    "shape",
    "step_users",
    "step_seconds",
    "spike_factor",
    "slo_file",
    "gate_p95_ms",
    "gate_p99_ms",
    "gate_max_failure_ratio",
    "gate_min_rps",
}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with running_server(server_env()) as server:
        yield server


def test_the_web_ui_takes_the_shape_and_gates_and_the_html_report_has_the_verdict(
    server: ServerProcess, tmp_path: Path
) -> None:
    port = free_port()
    web = f"http://127.0.0.1:{port}"
    html, report = tmp_path / "run.html", tmp_path / "run_slo.json"
    log = (tmp_path / "locust.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--web-host", "127.0.0.1",
         "--web-port", str(port), "--host", server.url, "--html", str(html), "--slo-report", str(report)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_until(
            lambda: httpx.get(web, timeout=2).status_code == 200, what="locust's web UI", alive=process
        )
        page = httpx.get(web, timeout=10).text
        template_args: dict[str, Any] = json.loads(
            re.search(r"templateArgs = (\{.*?\})\s*</script>", page, re.S)[1]  # type: ignore[index]
        )
        options = template_args["extra_options"]
        assert set(options) >= FIELDS, sorted(options)
        assert options["shape"]["choices"] == list(SHAPES)
        assert "slo_report" not in options  # a path on locust's machine, not a form field

        # What an operator fills in: a ramp of two one-user steps of 3 s, and a p95 limit of 12345 ms.
        form = {"user_count": "2", "spawn_rate": "2", "host": server.url, "shape": "ramp",
                "step_users": "1", "step_seconds": "3", "gate_p95_ms": "12345", "gate_min_rps": ""}  # fmt: skip
        started = httpx.post(f"{web}/swarm", data=form, timeout=10).json()
        assert started["success"], started

        def stopped() -> bool:
            state = httpx.get(f"{web}/stats/requests", timeout=5).json()["state"]
            return bool(state == "stopped")

        # "Download report" while the ramp runs: the verdict of the run so far, on top of the page.
        during = httpx.get(f"{web}/stats/report", params={"download": "1"}, timeout=30).text
        wait_until(stopped, what="the ramp to finish", alive=process, timeout=120)
        after = httpx.get(f"{web}/stats/report", params={"download": "1"}, timeout=30).text
        process.send_signal(signal.SIGINT)  # locust writes its HTML report, then quits and judges
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    output = (tmp_path / "locust.log").read_text()
    verdict = json.loads(report.read_text())
    assert verdict["shape"] == "ramp", output
    assert [stage["users"] for stage in verdict["stages"]] == [1, 2]
    limits = {(check["group"], check["gate"]): check["limit"] for check in verdict["checks"]}
    assert limits[("Aggregated", "p95 ms")] == 12345

    page = html.read_text()
    section = re.search(r'<section id="inkwell-slo-verdict".*?</section>', page, re.S)
    assert section is not None
    outcome = "PASS" if verdict["passed"] else "FAIL"
    assert f"SLO verdict: {outcome}" in section[0]
    assert "12,345" in section[0]  # the limit the form set, in the gates' table
    assert "Stages of the ramp shape" in section[0]
    assert page.index("inkwell-slo-verdict") < page.index('<div id="root"')  # above locust's charts

    # The web UI's downloads carry it too: "so far" while the run went on, final once it stopped.
    for downloaded, title in ((during, "SLO verdict so far"), (after, f"SLO verdict: {outcome}")):
        section = re.search(r'<section id="inkwell-slo-verdict".*?</section>', downloaded, re.S)
        assert section is not None, downloaded[:500]
        assert title in section[0]
        assert "12,345" in section[0]
        assert downloaded.index("inkwell-slo-verdict") < downloaded.index('<div id="root"')
    assert "so far" not in after
