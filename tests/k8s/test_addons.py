"""The cluster add-ons in k8s/ are accepted by a real API server, the operators' RBAC grants exactly
what the CLI needs, and the add-ons agree with the chart on the names it relies on (namespaces, the
collector's address, the autoscaling metric)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.support.helm import CHART, one, render
from tests.support.kube import ROOT, Kube

pytestmark = pytest.mark.slow

K8S = ROOT / "k8s"
PROD = CHART / "ci" / "production-values.yaml"
# Plain manifests: everything but Helm values and the test cluster's own KWOK configuration.
MANIFESTS = sorted(
    path for path in K8S.rglob("*.yaml") if path.name != "values.yaml" and K8S / "kwok" not in path.parents
)
VALUES = sorted(K8S.rglob("values.yaml"))


def _docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _in_namespace(docs: list[dict[str, Any]], namespace: str) -> str:
    """The manifests with every namespace they name moved to the test's own."""
    moved = []
    for doc in docs:
        doc = json.loads(json.dumps(doc))
        if "namespace" in doc["metadata"]:
            doc["metadata"]["namespace"] = namespace
        for subject in doc.get("subjects", []):
            if "namespace" in subject:
                subject["namespace"] = namespace
        moved.append(doc)
    return yaml.safe_dump_all(moved)


CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}


def _apply(kube: Kube, path: Path, *, dry_run: bool) -> list[dict[str, Any]]:
    docs = _docs(path)
    extra = ["--dry-run=server"] if dry_run else []
    if all(doc["kind"] == "Namespace" for doc in docs):
        # Real namespaces are never touched: the server validates them and stores nothing.
        assert dry_run
        result = kube.run("kubectl", "apply", *extra, "-o", "json", "-f", str(path))
    else:
        result = kube.kubectl(
            "apply", *extra, "-o", "json", "-f", "-", stdin=_in_namespace(docs, kube.namespace)
        )
    applied = json.loads(result.stdout)
    return list(applied["items"]) if applied["kind"] == "List" else [applied]


def test_the_plain_manifests_are_the_expected_ones() -> None:
    assert [path.relative_to(K8S).as_posix() for path in MANIFESTS] == [
        "namespaces.yaml",
        "otel-collector/otel-collector.yaml",
        "rbac/inkwell-ops-all-namespaces.yaml",
        "rbac/inkwell-ops.yaml",
    ]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.relative_to(K8S).as_posix())
def test_every_manifest_is_accepted_by_the_api_server(kube: Kube, path: Path) -> None:
    applied = _apply(kube, path, dry_run=True)
    expected = [(doc["kind"], doc["metadata"]["name"]) for doc in _docs(path)]
    assert [(obj["kind"], obj["metadata"]["name"]) for obj in applied] == expected
    for obj in applied:
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"]["namespace"] == kube.namespace


def test_the_namespaces_carry_the_labels_the_chart_network_policy_selects(kube: Kube) -> None:
    applied = {obj["metadata"]["name"]: obj for obj in _apply(kube, K8S / "namespaces.yaml", dry_run=True)}
    assert set(applied) == {"inkwell", "ingress-nginx", "monitoring", "observability"}
    for name, namespace in applied.items():
        assert namespace["metadata"]["labels"]["kubernetes.io/metadata.name"] == name
    policy = one(render(PROD), "NetworkPolicy", "-inkwell")
    selected = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for rule in policy["spec"]["ingress"]
        for peer in rule["from"]
        if "namespaceSelector" in peer
    }
    assert selected == {"ingress-nginx", "monitoring"}
    assert selected <= set(applied)


# --- the OpenTelemetry Collector -------------------------------------------------------------


@pytest.fixture(scope="module")
def collector(kube: Kube) -> list[dict[str, Any]]:
    applied = _apply(kube, K8S / "otel-collector" / "otel-collector.yaml", dry_run=False)
    kube.kubectl("rollout", "status", "deployment/otel-collector", "--timeout=120s")
    return applied


def test_the_collector_rolls_out_with_two_ready_replicas(kube: Kube, collector: list[dict[str, Any]]) -> None:
    status = kube.get("deployment", "otel-collector")["status"]
    assert status["readyReplicas"] == 2
    assert {obj["kind"] for obj in collector} == {
        "ServiceAccount", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget"
    }  # fmt: skip


def test_the_collector_service_is_where_the_chart_sends_traces(
    kube: Kube, collector: list[dict[str, Any]]
) -> None:
    endpoint = urlsplit(yaml.safe_load(PROD.read_text())["tracing"]["otlpEndpoint"])
    assert endpoint.scheme == "http"
    service = one(_docs(K8S / "otel-collector" / "otel-collector.yaml"), "Service")
    assert endpoint.hostname == f"{service['metadata']['name']}.{service['metadata']['namespace']}"
    assert endpoint.hostname == "otel-collector.observability"
    served = kube.get("service", "otel-collector")
    ports = {port["name"]: port["port"] for port in served["spec"]["ports"]}
    assert ports == {"otlp-grpc": 4317, "otlp-http": 4318}
    assert endpoint.port == ports["otlp-http"]
    # The EndpointSlice controller catches up with the rollout shortly after it: wait, generously.
    deadline = time.monotonic() + 60
    while True:
        slices = json.loads(
            kube.kubectl(
                "get", "endpointslices", "-l", "kubernetes.io/service-name=otel-collector", "-o", "json"
            ).stdout
        )["items"]
        ready = [e for s in slices for e in s.get("endpoints") or [] if e["conditions"].get("ready")]
        if len(ready) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(ready) == 2


def test_the_collector_receives_otlp_batches_and_exports_to_the_backend_named_once(
    collector: list[dict[str, Any]],
) -> None:
    configmap = one(collector, "ConfigMap")
    config = yaml.safe_load(configmap["data"]["config.yaml"])
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    assert protocols["http"]["endpoint"].endswith(":4318")
    assert config["service"]["pipelines"]["traces"] == {
        "receivers": ["otlp"],
        "processors": ["memory_limiter", "batch"],
        "exporters": ["otlp"],
    }
    assert "batch" in config["processors"]
    assert config["exporters"]["otlp"]["endpoint"] == "${env:TRACE_BACKEND}"
    (container,) = one(collector, "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["TRACE_BACKEND"]["valueFrom"]["configMapKeyRef"] == {
        "name": "otel-collector",
        "key": "trace-backend",
    }
    assert configmap["data"]["trace-backend"] == "tempo.observability:4317"
    # The address appears nowhere else in the collector's configuration.
    assert configmap["data"]["config.yaml"].count("tempo") == 0


# --- RBAC for inkwell-ops --------------------------------------------------------------------


@pytest.fixture(scope="module")
def ops(kube: Kube) -> Kube:
    _apply(kube, K8S / "rbac" / "inkwell-ops.yaml", dry_run=False)
    return kube


def _can(kube: Kube, verb: str, resource: str, *, namespace: str | None = None) -> str:
    resource, _, subresource = resource.partition("/")
    account = f"system:serviceaccount:{kube.namespace}:inkwell-ops"
    args = ["auth", "can-i", verb, resource, f"--as={account}", "--as-group=system:serviceaccounts",
            f"--as-group=system:serviceaccounts:{kube.namespace}", "--as-group=system:authenticated"]  # fmt: skip
    if subresource:
        args.append(f"--subresource={subresource}")
    result = kube.run("kubectl", "-n", namespace or kube.namespace, *args, check=False)
    return result.stdout.strip()


# Exactly the verbs the CLI uses (ops/kube/); tests/ops/test_rbac.py runs every command as this account.
ALLOWED = [
    ("list", "pods"), ("get", "pods/log"), ("list", "services"), ("list", "events"),
    ("list", "endpointslices.discovery.k8s.io"), ("list", "ingresses.networking.k8s.io"),
    ("get", "pods/proxy"),
    ("list", "poddisruptionbudgets.policy"), ("list", "replicasets.apps"), ("patch", "replicasets.apps"),
    ("get", "deployments.apps"), ("list", "deployments.apps"), ("patch", "deployments.apps"),
    ("patch", "deployments.apps/scale"),
    ("list", "horizontalpodautoscalers.autoscaling"), ("patch", "horizontalpodautoscalers.autoscaling"),
    ("create", "jobs.batch"), ("get", "jobs.batch"), ("delete", "jobs.batch"),
]  # fmt: skip

DENIED = [
    ("get", "secrets"), ("list", "secrets"), ("watch", "secrets"),
    ("create", "deployments.apps"), ("delete", "deployments.apps"), ("update", "deployments.apps"),
    ("watch", "deployments.apps"), ("update", "deployments.apps/scale"), ("watch", "pods"), ("get", "pods"),
    ("delete", "pods"), ("create", "pods"), ("create", "pods/exec"), ("create", "pods/portforward"),
    ("create", "pods/eviction"), ("get", "configmaps"), ("patch", "services"), ("patch", "jobs.batch"),
    ("list", "jobs.batch"), ("get", "endpoints"), ("list", "events.events.k8s.io"),
    ("create", "cronjobs.batch"), ("delete", "horizontalpodautoscalers.autoscaling"),
    ("delete", "replicasets.apps"), ("update", "statefulsets.apps/scale"), ("create", "pods/proxy"), ("create", "roles.rbac.authorization.k8s.io"),
    ("create", "rolebindings.rbac.authorization.k8s.io"), ("create", "serviceaccounts/token"),
    ("delete", "namespaces"), ("list", "namespaces"), ("list", "nodes"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
]  # fmt: skip


@pytest.mark.parametrize(("verb", "resource"), ALLOWED, ids=lambda v: str(v))
def test_inkwell_ops_may_do_what_the_cli_needs(ops: Kube, verb: str, resource: str) -> None:
    assert _can(ops, verb, resource) == "yes"


@pytest.mark.parametrize(("verb", "resource"), DENIED, ids=lambda v: str(v))
def test_inkwell_ops_may_do_nothing_else(ops: Kube, verb: str, resource: str) -> None:
    assert _can(ops, verb, resource) == "no"


@pytest.mark.parametrize(
    ("verb", "resource"), [("list", "pods"), ("patch", "deployments.apps"), ("create", "jobs.batch")]
)
def test_inkwell_ops_has_no_rights_outside_its_namespace(ops: Kube, verb: str, resource: str) -> None:
    assert _can(ops, verb, resource, namespace="default") == "no"


def test_the_rbac_is_namespaced_and_names_no_wildcards() -> None:
    docs = _docs(K8S / "rbac" / "inkwell-ops.yaml")
    assert sorted(doc["kind"] for doc in docs) == ["Role", "RoleBinding", "ServiceAccount"]
    rules = one(docs, "Role")["rules"]
    for rule in rules:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert "secrets" not in rule["resources"]
    binding = one(docs, "RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "inkwell-ops",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "inkwell-ops", "namespace": "inkwell"}]


# --- Helm values for the add-on charts -------------------------------------------------------


def _values(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((K8S / name / "values.yaml").read_text()))


def test_every_values_file_parses_to_a_mapping() -> None:
    assert [path.parent.name for path in VALUES] == [
        "ingress-nginx", "kube-prometheus-stack", "prometheus-adapter"
    ]  # fmt: skip
    for path in VALUES:
        assert isinstance(yaml.safe_load(path.read_text()), dict)


def test_ingress_nginx_generates_request_ids_and_is_monitored_and_highly_available() -> None:
    controller = _values("ingress-nginx")["controller"]
    assert controller["config"]["generate-request-id"] == "true"
    assert controller["config"]["use-forwarded-headers"] == "false"
    assert (
        controller["config"]["proxy-body-size"]
        == yaml.safe_load((CHART / "values.yaml").read_text())["ingress"]["proxyBodySize"]
    )
    assert "$req_id" in controller["config"]["log-format-upstream"]
    assert controller["replicaCount"] >= 2
    assert 1 <= controller["minAvailable"] < controller["replicaCount"]
    assert controller["metrics"]["enabled"] is True
    assert controller["metrics"]["serviceMonitor"]["enabled"] is True
    assert (
        controller["ingressClassResource"]["name"]
        == one(render(PROD), "Ingress", "-inkwell")["spec"]["ingressClassName"]
    )
    assert controller["allowSnippetAnnotations"] is False


def test_prometheus_selects_monitors_and_rules_everywhere_and_keeps_exemplars() -> None:
    values = _values("kube-prometheus-stack")
    spec = values["prometheus"]["prometheusSpec"]
    for kind in ("serviceMonitor", "podMonitor", "rule", "probe"):
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False
        assert spec[f"{kind}Selector"] == {}
        assert spec[f"{kind}NamespaceSelector"] == {}
    assert spec["enableFeatures"] == ["exemplar-storage"]
    assert spec["retention"] == "15d"
    assert spec["retentionSize"] == "45GB"
    dashboards = values["grafana"]["sidecar"]["dashboards"]
    assert dashboards == {
        "enabled": True,
        "label": "grafana_dashboard",
        "labelValue": "1",
        "searchNamespace": "ALL",
    }
    # The service's exemplars carry the trace id under this label.
    metrics = (ROOT / "service" / "observability" / "metrics.py").read_text()
    destination = values["grafana"]["sidecar"]["datasources"]["exemplarTraceIdDestinations"]
    assert f'exemplar={{"{destination["traceIdLabelName"]}"' in metrics
    assert destination["datasourceUid"] in {ds["uid"] for ds in values["grafana"]["additionalDataSources"]}


def test_prometheus_adapter_serves_the_metric_the_hpa_scales_on() -> None:
    hpa = one(render(PROD), "HorizontalPodAutoscaler")
    (pods_metric,) = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    values = _values("prometheus-adapter")
    assert values["rules"]["default"] is False
    (rule,) = values["rules"]["custom"]
    assert rule["name"]["as"] == pods_metric == "http_requests_per_second"
    assert "http_requests_total{" in rule["seriesQuery"]
    for label in ("namespace", "pod", "handler", "method", "status"):
        assert f'{label}!=""' in rule["seriesQuery"]
    assert rule["metricsQuery"] == "sum(rate(http_requests_total{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)"
    assert rule["resources"]["overrides"] == {
        "namespace": {"resource": "namespace"},
        "pod": {"resource": "pod"},
    }
    assert rule["name"]["matches"] == "^http_requests_total$"
    # The counter and its labels are the service's own.
    metrics = (ROOT / "service" / "observability" / "metrics.py").read_text()
    assert '"http_requests_total",' in metrics
    assert '["method", "handler", "status"]' in metrics
    url = urlsplit(values["prometheus"]["url"])
    assert url.hostname == "kube-prometheus-stack-prometheus.monitoring.svc"


def test_the_readme_names_every_add_on_and_the_install_order() -> None:
    readme = (K8S / "README.md").read_text()
    for path in MANIFESTS + VALUES:
        assert path.relative_to(K8S).as_posix() in readme
    steps = [
        "kubectl apply -f k8s/namespaces.yaml",
        "helm upgrade --install kube-prometheus-stack",
        "helm upgrade --install prometheus-adapter",
        "helm upgrade --install ingress-nginx",
        "kubectl apply -f k8s/otel-collector/otel-collector.yaml",
        "kubectl apply -f k8s/rbac/inkwell-ops.yaml",
        "helm upgrade --install inkwell charts/inkwell",
    ]
    positions = [readme.index(step) for step in steps]
    assert positions == sorted(positions)
