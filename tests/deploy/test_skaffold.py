"""skaffold.yaml as far as this machine can check it (no skaffold binary or schema reaches here: the
Go module proxy refuses its module): the config's shape, and that every file it names exists and
the chart renders with each profile's values and skaffold's image overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.helm import CHART, one, render

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CONFIG = yaml.safe_load((ROOT / "skaffold.yaml").read_text())


def _values_for(profile: str | None) -> Path:
    (release,) = CONFIG["deploy"]["helm"]["releases"]
    values = release["valuesFiles"][0]
    for candidate in CONFIG.get("profiles", []):
        if candidate["name"] == profile:
            (patch,) = [
                p for p in candidate["patches"] if p["path"] == "/deploy/helm/releases/0/valuesFiles/0"
            ]
            values = patch["value"]
    return ROOT / values


def test_the_config_is_a_current_skaffold_v2_config() -> None:
    assert CONFIG["apiVersion"].startswith("skaffold/v4beta")
    assert CONFIG["kind"] == "Config"
    (artifact,) = CONFIG["build"]["artifacts"]
    assert (ROOT / artifact["docker"]["dockerfile"]).is_file()
    (release,) = CONFIG["deploy"]["helm"]["releases"]
    assert ROOT / release["chartPath"] == CHART
    # The image skaffold built is what the chart deploys.
    slug = artifact["image"].replace(".", "_").replace("/", "_").replace("-", "_")
    assert release["setValueTemplates"]["image.repository"] == f"{{{{.IMAGE_REPO_{slug}}}}}"
    assert f"IMAGE_TAG_{slug}" in release["setValueTemplates"]["image.tag"]
    assert {profile["name"] for profile in CONFIG["profiles"]} == {"staging", "production"}


@pytest.mark.parametrize("profile", [None, "staging", "production"])
def test_each_profile_deploys_values_that_render_with_skaffolds_image(profile: str | None) -> None:
    values = _values_for(profile)
    assert values.is_file()
    objects: list[dict[str, Any]] = render(
        values,
        release="inkwell",
        **{"image.repository": "registry.local/inkwell", "image.tag": "abc123@sha256:0"},
    )
    deployment = one(objects, "Deployment")
    assert deployment["metadata"]["name"] == "inkwell"
    assert (
        deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        == "registry.local/inkwell:abc123@sha256:0"
    )


def test_port_forward_targets_the_charts_service() -> None:
    (forward,) = CONFIG["portForward"]
    service = one(render(_values_for(None), release="inkwell"), "Service")
    assert forward["resourceName"] == service["metadata"]["name"]
    assert forward["port"] == service["spec"]["ports"][0]["port"]
    assert forward["localPort"] == 8000
