"""Where the release differs from what Helm rendered. Helm is the source of truth and inkwell-ops the tool
of the moment: the chart stamps the image, the replica count and the HPA's bounds it rendered on the
objects (charts/inkwell/templates/_drift.tpl), and a change inkwell-ops makes to one of them is drift
until it is written into the release's values, which the `helm upgrade` printed here does. Until then
the chart refuses an upgrade whose values would put Helm's old value back (rather than let it happen
silently), so this is what to run next."""

from __future__ import annotations

from dataclasses import dataclass

from ops.model import DeploymentInfo, HpaInfo

# The chart path the runbooks use; elsewhere, the chart reference the release was installed from.
CHART = "charts/inkwell"


@dataclass(frozen=True)
class Drift:
    object: str  # kind/name
    field: str  # image, replicas, minReplicas, maxReplicas
    live: str
    helm: str
    values: list[str]  # the --set values that record the live state in the release


def _repository_and_tag(image: str) -> tuple[str, str]:
    reference = image.split("@", 1)[0]
    repository, sep, tag = reference.rpartition(":")
    if not sep or "/" in tag:
        return reference, "latest"
    return repository, tag


def find(deployment: DeploymentInfo, hpa: HpaInfo | None, container: str = "inkwell") -> list[Drift]:
    """The differences between the live objects and the chart's stamps; none where there is no stamp
    (a release installed by an older chart, or not by Helm)."""
    found = []
    stamp = deployment.helm_stamp
    where = f"deployment/{deployment.name}"
    live_image = deployment.images.get(container)
    helm_image = stamp.get("image")
    if helm_image and live_image and live_image != helm_image:
        repository, tag = _repository_and_tag(live_image)
        values = [f"image.tag={tag}"]
        if repository != _repository_and_tag(helm_image)[0]:
            values.insert(0, f"image.repository={repository}")
        found.append(Drift(where, "image", live_image, helm_image, values))
    helm_replicas = stamp.get("replicas")
    if hpa is None and helm_replicas and str(deployment.desired) != helm_replicas:
        found.append(
            Drift(
                where,
                "replicas",
                str(deployment.desired),
                helm_replicas,
                [f"replicaCount={deployment.desired}"],
            )
        )
    if hpa is not None:
        for field, key, live in (
            ("minReplicas", "min-replicas", hpa.min_replicas),
            ("maxReplicas", "max-replicas", hpa.max_replicas),
        ):
            helm_value = hpa.helm_stamp.get(key)
            if helm_value and str(live) != helm_value:
                found.append(
                    Drift(
                        f"horizontalpodautoscaler/{hpa.name}",
                        field,
                        str(live),
                        helm_value,
                        [f"autoscaling.{field}={live}"],
                    )
                )
    return found


def helm_command(release: str, namespace: str, drifts: list[Drift]) -> str:
    """The `helm upgrade` that writes the live state into the release's values (and into `helm history`)."""
    sets = " ".join(f"--set {value}" for drift in drifts for value in drift.values)
    return f"helm upgrade {release} {CHART} -n {namespace} --reuse-values {sets}"


def describe(drifts: list[Drift]) -> str:
    return ", ".join(f"{d.object} {d.field} {d.live} (Helm's: {d.helm})" for d in drifts)
