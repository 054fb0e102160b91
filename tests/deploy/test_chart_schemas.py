"""Every object the chart renders, for every environment, is one the pinned Kubernetes API and the
prometheus-operator CRDs accept, checked offline against their own schemas rather than our idea of them.

Kubernetes objects are validated with the OpenAPI schemas `kubernetes-validate` ships, in strict mode
(unknown fields are errors, as with `kubectl apply --validate=strict`), for the minor pinned in
k8s/versions.env (1.37, which its installed release carries). monitoring.coreos.com objects are
validated with the openAPIV3Schema of the prometheus-operator CRDs at the pinned operator version;
those schemas leave unknown fields to the API server, which prunes or (with strict field validation)
rejects them, so object schemas are closed here the same way before validating.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.support.helm import CHART, CI_VALUES, kinds, one, render
from tests.support.kube import prometheus_operator_crds, versions

pytestmark = pytest.mark.slow

PROD = CHART / "ci" / "production-values.yaml"
KUBERNETES_VERSION = versions()["KUBERNETES_VERSION"]
PINNED_MINOR = ".".join(KUBERNETES_VERSION.removeprefix("v").split(".")[:2])
MONITORING_GROUP = "monitoring.coreos.com"


@functools.cache
def rendered(values: Path) -> list[dict[str, Any]]:
    return render(values)


def closed(schema: Any) -> Any:
    """The schema with every object that lists its properties refusing any others, as the API server's
    strict field validation does unless the CRD says unknown fields are kept, and Go patterns as Python's."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: closed(value) for key, value in schema.items()}
    if isinstance(schema.get("pattern"), str):
        # Go's regexp takes inline flags anywhere ("^(?i)..."); Python's only at the very start.
        result["pattern"] = re.sub(r"^\^(\(\?[a-z]+\))", r"\1^", schema["pattern"])
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result


@functools.cache
def crd_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
    for path in prometheus_operator_crds():
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            schema = closed(version["schema"]["openAPIV3Schema"])
            validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
            validator_class.check_schema(schema)
            api_version = f"{crd['spec']['group']}/{version['name']}"
            validators[api_version, crd["spec"]["names"]["kind"]] = validator_class(schema)
    return validators


def kubernetes_errors(obj: dict[str, Any]) -> str | None:
    try:
        version = kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return f"{obj['kind']}/{obj['metadata']['name']}: {error.message}"
    assert version == PINNED_MINOR, f"validated against {version}, not the pinned {PINNED_MINOR}"
    return None


def crd_errors(obj: dict[str, Any]) -> list[str]:
    validator = crd_validators()[obj["apiVersion"], obj["kind"]]
    return [
        f"{obj['kind']}/{obj['metadata']['name']} at {error.json_path}: {error.message}"
        for error in validator.iter_errors(obj)
    ]


def is_monitoring(obj: dict[str, Any]) -> bool:
    return bool(obj["apiVersion"].startswith(f"{MONITORING_GROUP}/"))


def test_the_installed_schemas_cover_the_pinned_kubernetes_minor() -> None:
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}}
    assert kubernetes_validate.validate(configmap, KUBERNETES_VERSION, strict=True) == PINNED_MINOR


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_object_matches_the_pinned_kubernetes_schemas(values: Path) -> None:
    objects = [o for o in rendered(values) if not is_monitoring(o)]
    assert {"Deployment", "Service", "Ingress", "ConfigMap", "ServiceAccount", "Job", "Pod"} <= kinds(objects)
    errors = [error for obj in objects if (error := kubernetes_errors(obj))]
    assert errors == []


def test_production_through_pgbouncer_with_a_replica_and_redis_matches_the_pinned_kubernetes_schemas() -> (
    None
):
    sets = {"database.pooler": "pgbouncer", "database.replica.enabled": "true", "redis.enabled": "true"}
    objects = [o for o in render(PROD, **sets) if not is_monitoring(o)]
    errors = [error for obj in objects if (error := kubernetes_errors(obj))]
    assert errors == []


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_monitoring_objects_match_the_prometheus_operator_crds(values: Path) -> None:
    objects = [o for o in rendered(values) if is_monitoring(o)]
    for obj in objects:
        assert (obj["apiVersion"], obj["kind"]) in crd_validators(), f"no CRD for {obj['kind']}"
    errors = [error for obj in objects for error in crd_errors(obj)]
    assert errors == []


def test_production_renders_a_service_monitor_to_validate() -> None:
    monitor = one(rendered(PROD), "ServiceMonitor")
    assert monitor["apiVersion"] == f"{MONITORING_GROUP}/v1"
    assert crd_errors(monitor) == []


def test_a_deployment_with_a_string_replica_count_or_an_unknown_field_is_rejected() -> None:
    deployment = one(rendered(PROD), "Deployment")
    assert kubernetes_errors(deployment) is None
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "3"
    assert "'3' is not of type 'integer'" in (kubernetes_errors(wrong_type) or "")
    unknown = copy.deepcopy(deployment)
    unknown["spec"]["template"]["spec"]["containers"][0]["privilged"] = True
    assert "'privilged' was unexpected" in (kubernetes_errors(unknown) or "")


def test_a_service_monitor_with_an_unknown_endpoint_field_or_a_bad_interval_is_rejected() -> None:
    monitor = {
        "apiVersion": f"{MONITORING_GROUP}/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "inkwell"},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "inkwell"}},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s"}],
        },
    }
    assert crd_errors(monitor) == []
    unknown = copy.deepcopy(monitor)
    unknown["spec"]["endpoints"][0]["scrapeIntervall"] = "30s"
    assert crd_errors(unknown) == [
        "ServiceMonitor/inkwell at $.spec.endpoints[0]: "
        "Additional properties are not allowed ('scrapeIntervall' was unexpected)"
    ]
    bad_interval = copy.deepcopy(monitor)
    bad_interval["spec"]["endpoints"][0]["interval"] = "every minute"
    (error,) = crd_errors(bad_interval)
    assert error.startswith(
        "ServiceMonitor/inkwell at $.spec.endpoints[0].interval: 'every minute' does not match"
    )
