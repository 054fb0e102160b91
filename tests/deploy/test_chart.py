"""The Helm chart as rendered: lint-clean for every environment, each switch tested both ways,
and the objects carry what production needs (probes, security context, drain, routes kept off
the ingress, hooks) rather than what a template happens to print."""

from __future__ import annotations

import pytest

from tests.support.helm import CHART, CI_VALUES, helm, kinds, one, render

pytestmark = pytest.mark.slow

DEV = CHART / "ci" / "development-values.yaml"
PROD = CHART / "ci" / "production-values.yaml"


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_lint_is_clean_for_every_environment(values: object) -> None:
    result = helm("lint", "--strict", str(CHART), "-f", str(values), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_values_schema_rejects_unknown_keys_and_wrong_types() -> None:
    unknown = helm("template", "x", str(CHART), "-f", str(DEV), "--set", "replicas=3", check=False)
    assert unknown.returncode != 0
    assert "additional properties 'replicas' not allowed" in unknown.stderr
    wrong = helm("template", "x", str(CHART), "-f", str(DEV), "--set", "service.port=http", check=False)
    assert wrong.returncode != 0
    short = helm("template", "x", str(CHART), "-f", str(DEV), "--set", "secret.secretKey=short", check=False)
    assert short.returncode != 0


def test_a_secret_or_an_existing_secret_is_required() -> None:
    missing = helm("template", "x", str(CHART), check=False)
    assert missing.returncode != 0
    assert "secret.secretKey is required" in missing.stderr
    objects = render(PROD)
    assert "Secret" not in kinds(objects)
    env = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
        for e in env
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert refs["INKWELL_SECRET_KEY"] == "inkwell-production"
    assert refs["INKWELL_DATABASE_URL"] == "inkwell-production"


def test_the_pod_is_locked_down_probed_and_drains_before_it_stops() -> None:
    deployment = one(render(DEV), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    drain = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert drain == 5
    # preStop drain + the service's graceful timeout (20) must fit in the grace period.
    assert pod["terminationGracePeriodSeconds"] >= drain + 20
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"


def test_a_config_change_rolls_the_pods() -> None:
    before = one(render(DEV), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    after = one(render(DEV, **{"config.logLevel": "WARNING"}), "Deployment")["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert before["checksum/config"] != after["checksum/config"]
    assert before["checksum/secret"] == after["checksum/secret"]


def test_the_ingress_routes_only_the_api_and_its_docs() -> None:
    ingress = one(render(PROD), "Ingress", "-inkwell")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    (rule,) = ingress["spec"]["rules"]
    paths = {p["path"] for p in rule["http"]["paths"]}
    assert paths == {"/api", "/docs", "/redoc", "/openapi.json"}
    assert not paths & {"/metrics", "/healthz", "/readyz", "/"}
    assert ingress["spec"]["tls"][0]["hosts"] == ["inkwell.example.com"]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "1m"
    # Snippet annotations are refused by ingress-nginx's admission webhook.
    assert not any("snippet" in name for name in annotations)
    assert "Ingress" not in kinds(render(DEV, **{"ingress.enabled": "false"}))


def test_autoscaling_replaces_the_replica_count_and_scales_on_cpu_and_requests() -> None:
    production = render(PROD)
    assert "replicas" not in one(production, "Deployment")["spec"]
    hpa = one(production, "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] == 3
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert metrics["Resource"]["resource"]["target"]["averageUtilization"] == 70
    assert metrics["Pods"]["pods"]["metric"]["name"] == "http_requests_per_second"
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    development = render(DEV)
    assert "HorizontalPodAutoscaler" not in kinds(development)
    assert one(development, "Deployment")["spec"]["replicas"] == 1


@pytest.mark.parametrize(
    ("switch", "kind"),
    [
        ("podDisruptionBudget.enabled", "PodDisruptionBudget"),
        ("networkPolicy.enabled", "NetworkPolicy"),
        ("serviceMonitor.enabled", "ServiceMonitor"),
        ("prometheusRule.enabled", "PrometheusRule"),
        ("migrations.enabled", "Job"),
        ("serviceAccount.create", "ServiceAccount"),
    ],
)
def test_each_optional_object_follows_its_switch(switch: str, kind: str) -> None:
    assert kind in kinds(render(DEV, **{switch: "true"}))
    assert kind not in kinds(render(DEV, **{switch: "false"}))


def test_the_migration_job_runs_before_install_and_upgrade_with_the_app_image_and_secret() -> None:
    objects = render(DEV, **{"image.tag": "1.2.3"})
    job = one(objects, "Job", "-migrate")
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    # Neither the Service nor the disruption budget selects the migration pod.
    selector = one(objects, "Service")["spec"]["selector"]
    assert not selector.items() <= pod_labels.items()
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["inkwell", "migrate"]
    assert container["image"] == "ghcr.io/inkwell/inkwell:1.2.3"
    secret = one(objects, "Secret")
    # The Secret is created before the hook that reads it.
    assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    )


def test_the_network_policy_admits_only_the_ingress_controller_prometheus_and_helm_test() -> None:
    objects = render(PROD)
    policy = one(objects, "NetworkPolicy", "-inkwell")
    from_ingress, from_prometheus, from_test = policy["spec"]["ingress"]
    # The ingress controller reaches the service port only, Prometheus the metrics port only.
    for rule, namespace, port in (
        (from_ingress, "ingress-nginx", "http"),
        (from_prometheus, "monitoring", "metrics"),
    ):
        (peer,) = rule["from"]
        assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": namespace}
        assert rule["ports"] == [{"port": port, "protocol": "TCP"}]
    assert from_test["ports"] == [{"port": "http", "protocol": "TCP"}]
    test_pod = one(objects, "Pod", "-test")
    (peer,) = from_test["from"]
    assert peer["podSelector"]["matchLabels"].items() <= test_pod["metadata"]["labels"].items()


def test_run_once_pods_are_locked_down_and_never_behind_the_service() -> None:
    objects = render(PROD)
    policy = one(objects, "NetworkPolicy", "-run-once")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in policy["spec"]  # nothing may connect to them
    (expression,) = policy["spec"]["podSelector"]["matchExpressions"]
    selector = one(objects, "Service")["spec"]["selector"]
    pods = [
        one(objects, "Pod", "-test")["metadata"],
        one(objects, "Job", "-migrate")["spec"]["template"]["metadata"],
    ]
    for pod in pods:
        assert pod["labels"]["app.kubernetes.io/component"] in expression["values"]
        assert not selector.items() <= pod["labels"].items()


def test_tracing_is_configured_only_with_an_endpoint() -> None:
    off = one(render(DEV), "ConfigMap", "-inkwell")["data"]
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in off
    on = one(render(PROD), "ConfigMap", "-inkwell")["data"]
    assert on["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4318"
    assert on["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert on["OTEL_TRACES_SAMPLER_ARG"] == "0.1"
