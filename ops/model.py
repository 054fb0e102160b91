"""What the CLI knows about a release, as plain data: the adapter fills it in, commands and output read it,
and nothing here depends on the Kubernetes client."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""
    since: datetime | None = None


@dataclass(frozen=True)
class ContainerInfo:
    name: str
    image: str
    ready: bool
    restarts: int
    state: str  # running, waiting, terminated or unknown
    reason: str = ""  # of the current state: CrashLoopBackOff, ImagePullBackOff, Completed...
    message: str = ""
    exit_code: int | None = None
    last_termination_reason: str = ""  # of the previous run: OOMKilled, Error...
    last_exit_code: int | None = None


@dataclass(frozen=True)
class PodInfo:
    name: str
    phase: str
    ready: bool
    restarts: int
    created: datetime | None
    node: str
    template_hash: str
    deleting: bool
    containers: list[ContainerInfo] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)

    @property
    def last_termination_reason(self) -> str:
        return next((c.last_termination_reason for c in self.containers if c.last_termination_reason), "")


@dataclass(frozen=True)
class DeploymentInfo:
    name: str
    namespace: str
    revision: int
    images: dict[str, str]  # container name -> image
    desired: int
    replicas: int  # all pods the Deployment owns, old and new
    updated: int
    ready: int
    available: int
    generation: int
    observed_generation: int
    paused: bool
    progress_deadline_seconds: int | None
    selector: dict[str, str]
    conditions: list[Condition] = field(default_factory=list)
    # What the chart rendered (its inkwell.dev/helm-* annotations), to tell a change made outside Helm.
    helm_stamp: dict[str, str] = field(default_factory=dict)

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


@dataclass(frozen=True)
class Revision:
    revision: int
    replicaset: str
    images: dict[str, str]
    created: datetime | None
    replicas: int
    ready: int
    current: bool
    change_cause: str = ""
    template_hash: str = ""
    # What inkwell-ops recorded on the ReplicaSet (ops.kube.convert's annotations): how its last rollout
    # ended (complete, or failed with a reason), when it last became current, and when it was rolled back.
    outcome: str = ""
    outcome_reason: str = ""
    current_since: datetime | None = None
    rolled_back_at: datetime | None = None

    @property
    def good(self) -> bool:
        """A revision to go back to: not one whose rollout failed, nor one an operator rolled back from."""
        return self.outcome != "failed" and self.rolled_back_at is None


@dataclass(frozen=True)
class MetricInfo:
    name: str
    current: str
    target: str


@dataclass(frozen=True)
class HpaInfo:
    name: str
    min_replicas: int
    max_replicas: int
    current_replicas: int
    desired_replicas: int
    metrics: list[MetricInfo] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    # What the chart rendered (its inkwell.dev/helm-* annotations), to tell a change made outside Helm.
    helm_stamp: dict[str, str] = field(default_factory=dict)

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


@dataclass(frozen=True)
class PdbInfo:
    name: str
    disruptions_allowed: int
    current_healthy: int
    desired_healthy: int
    expected_pods: int


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    ready_endpoints: int
    not_ready_endpoints: int


@dataclass(frozen=True)
class IngressInfo:
    name: str
    hosts: list[str]
    services: list[str]  # backend Services


@dataclass(frozen=True)
class EventInfo:
    type: str
    reason: str
    kind: str
    name: str
    message: str
    count: int
    last_seen: datetime | None


@dataclass(frozen=True)
class RolloutPods:
    """The current revision's ReplicaSet (None before the controller made it), its pods and their warnings."""

    revision: Revision | None
    pods: list[PodInfo]
    warnings: list[EventInfo]


@dataclass(frozen=True)
class ReleaseState:
    """One snapshot of a release: everything `status` shows and `diagnose` reasons about."""

    namespace: str
    release: str
    deployment: DeploymentInfo
    revisions: list[Revision]
    pods: list[PodInfo]
    hpa: HpaInfo | None
    pdbs: list[PdbInfo]
    services: list[ServiceInfo]
    ingresses: list[IngressInfo]
    warnings: list[EventInfo]
    observed_at: datetime

    @property
    def current_hash(self) -> str:
        return next((r.template_hash for r in self.revisions if r.current), "")


@dataclass(frozen=True)
class JobInfo:
    name: str
    active: int
    succeeded: int
    failed: int
    done: bool
    complete: bool
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class DeployedRelease:
    """One Inkwell Deployment, as `releases` lists it: what is deployed where, and by which Helm revision."""

    namespace: str
    release: str  # app.kubernetes.io/instance, the label every command selects by
    deployment: str
    chart: str  # helm.sh/chart: inkwell-<version>
    app_version: str  # app.kubernetes.io/version
    helm_release: str | None  # meta.helm.sh/release-name: None when Helm did not install it
    helm_revision: int | None  # the chart's inkwell.dev/helm-revision annotation
    images: dict[str, str]  # container name -> image
    desired: int
    updated: int
    ready: int
    available: int
    revision: int  # the Deployment's own revision (its ReplicaSets)
    created: datetime | None
