"""What an action tells while it runs and what it ends in, as plain data and exceptions: the actions layer
produces them, the CLI renders them and turns them into exit codes, and none of it depends on how the
cluster is asked."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from ops.diagnose import Finding
from ops.model import DeploymentInfo, PodInfo, ReleaseState, Revision


class Reporter(Protocol):
    """Where an action says what it is doing while it does it; the CLI's is ops.output.Output (stderr)."""

    def say(self, message: str) -> None: ...

    def fail(self, message: str) -> None: ...

    def progress(self, what: str, total: int) -> AbstractContextManager[Callable[[int, int, str], None]]: ...


class Failed(Exception):
    """The action could not be done; the message says why."""


class Refused(Exception):
    """The action was not done because doing it as asked would be wrong; the message says what to ask."""


class BadOption(Exception):
    """An option names something the release does not have (a container, say)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class Status:
    """The release as it is, and what is wrong with it."""

    state: ReleaseState
    problems: list[Finding]

    @property
    def healthy(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class History:
    deployment: str
    revisions: list[Revision]


@dataclass(frozen=True)
class DryRun:
    """A change the API server validated and did not store."""

    action: str
    deployment: str
    diff: str  # a unified diff of the pod template, or one line; empty when nothing would change


@dataclass(frozen=True)
class AlreadyAt:
    """A rollback to the revision the Deployment already runs: nothing to do."""

    deployment: str
    revision: int


@dataclass(frozen=True)
class Outcome:
    """How waiting for the Deployment to settle ended."""

    ok: bool
    reason: str  # Complete, ProgressDeadlineExceeded or Timeout
    message: str
    deployment: DeploymentInfo


@dataclass(frozen=True)
class Settled:
    """A change made to the Deployment, and how its rollout ended."""

    action: ClassVar[str]
    deployment: str
    outcome: Outcome


@dataclass(frozen=True)
class RestartResult(Settled):
    action: ClassVar[str] = "restart"


@dataclass(frozen=True)
class RolloutResult(Settled):
    action: ClassVar[str] = "rollout"
    image: str
    rolled_back_to: int | None = None  # the revision restored after the new one failed
    rollback_ok: bool | None = None


@dataclass(frozen=True)
class RollbackResult(Settled):
    action: ClassVar[str] = "rollback"
    restored: int  # the revision whose pod template came back (as a new revision number)


@dataclass(frozen=True)
class HpaChange:
    name: str
    minimum: tuple[int, int]  # before, after
    maximum: tuple[int, int]
    desired: int | None = None  # the replicas the HPA chose once it saw the new bounds
    why: str = ""  # why it chose them: a bound, its metrics, or metrics it cannot read


@dataclass(frozen=True)
class ScaleResult(Settled):
    action: ClassVar[str] = "scale"
    replicas: int
    hpa: HpaChange | None  # set when the HPA's bounds moved instead of the Deployment's replicas


@dataclass
class MigrationResult:
    job: str
    succeeded: bool
    reason: str
    message: str
    pods: list[PodInfo] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)
    cleaned_up: bool = False
