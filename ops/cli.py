"""`inkwell-ops`: the commands an SRE runs against an Inkwell release, with exit codes a script can branch on
(0 healthy or done, 1 failed, 2 usage or refused, 3 degraded)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

import typer

from ops import diagnose as diagnosis
from ops import migrate as migration
from ops import rollout as rollouts
from ops import slo as slos
from ops import smoke as smoking
from ops import views
from ops.exitcodes import Exit
from ops.kube import Cluster, Connection, KubeError
from ops.output import Format, Output, to_data

app = typer.Typer(
    name="inkwell-ops",
    help="Operate an Inkwell release on Kubernetes. Exit codes: 0 healthy/succeeded, 1 failed, "
    "2 usage or refused, 3 degraded.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@dataclass
class Settings:
    kubeconfig: str | None
    context: str | None
    namespace: str | None
    release: str
    output: Format
    impersonate: str | None


class Session:
    """What a command needs: the settings, the output, and a cluster connection made on first use (smoke
    and slo never need one)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.out = Output(settings.output)
        self._cluster: Cluster | None = None

    @property
    def cluster(self) -> Cluster:
        if self._cluster is None:
            s = self.settings
            self._cluster = Cluster(
                Connection(
                    kubeconfig=s.kubeconfig,
                    context=s.context,
                    namespace=s.namespace,
                    impersonate=s.impersonate,
                )
            )
        return self._cluster

    @property
    def release(self) -> str:
        return self.settings.release

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.close()


def _session(ctx: typer.Context) -> Session:
    session = ctx.obj
    assert isinstance(session, Session)
    return session


def _exit(code: Exit) -> NoReturn:
    raise typer.Exit(int(code))


@contextmanager
def _api_errors(session: Session) -> Iterator[None]:
    try:
        yield
    except KubeError as exc:
        session.out.fail(str(exc))
        _exit(Exit.FAILED)


def _labels(values: list[str] | None) -> dict[str, str]:
    labels = {}
    for value in values or []:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{value!r} is not key=value", param_hint="--label")
        labels[key] = val
    return labels


def _container(images: dict[str, str], chosen: str | None) -> str:
    if chosen is not None:
        if chosen not in images:
            raise typer.BadParameter(
                f"no container {chosen!r} (containers: {', '.join(images)})", param_hint="--container"
            )
        return chosen
    if len(images) == 1:
        return next(iter(images))
    if "inkwell" in images:
        return "inkwell"
    raise typer.BadParameter(f"several containers ({', '.join(images)}); name one", param_hint="--container")


@app.callback()
def main(
    ctx: typer.Context,
    kubeconfig: Annotated[str | None, typer.Option(envvar="KUBECONFIG", help="Kubeconfig file(s).")] = None,
    context: Annotated[
        str | None, typer.Option(help="Kubeconfig context (default: its current one).")
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace", "-n", envvar="INKWELL_OPS_NAMESPACE", help="Namespace (default: the context's)."
        ),
    ] = None,
    release: Annotated[
        str,
        typer.Option(
            "--release",
            "-r",
            envvar="INKWELL_OPS_RELEASE",
            help="Helm release: app.kubernetes.io/instance label.",
        ),
    ] = "inkwell",
    output: Annotated[Format, typer.Option("--output", "-o", help="Result format.")] = Format.table,
    as_user: Annotated[
        str | None,
        typer.Option("--as", help="Impersonate this user, e.g. system:serviceaccount:inkwell:inkwell-ops."),
    ] = None,
) -> None:
    # stdout is the result (`-o json` is parsed by scripts): httpx's per-request INFO lines must
    # not reach it, even where the embedding program has configured logging.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    session = Session(Settings(kubeconfig, context, namespace, release, output, as_user))
    ctx.obj = session
    ctx.call_on_close(session.close)


# --- reading ---------------------------------------------------------------------------------------


@app.command()
def status(ctx: typer.Context) -> None:
    """The release at a glance; exit 3 when anything is degraded."""
    session = _session(ctx)
    with _api_errors(session):
        state = session.cluster.reads.release_state(session.release)
    problems = diagnosis.diagnose(state)
    result = {"healthy": not problems, "problems": problems, "state": state}
    session.out.result(result, lambda console: views.status(console, state, problems))
    _exit(Exit.DEGRADED if problems else Exit.OK)


@app.command()
def diagnose(ctx: typer.Context) -> None:
    """Find known failure modes and say what to do about each; exit 3 when there are any."""
    session = _session(ctx)
    with _api_errors(session):
        state = session.cluster.reads.release_state(session.release)
    problems = diagnosis.diagnose(state)
    session.out.result({"problems": problems}, lambda console: views.findings(console, problems))
    _exit(Exit.DEGRADED if problems else Exit.OK)


@app.command()
def history(ctx: typer.Context) -> None:
    """The Deployment's revisions (from its ReplicaSets), with image and time."""
    session = _session(ctx)
    with _api_errors(session):
        name = session.cluster.reads.find_deployment(session.release)
        revisions = session.cluster.reads.revisions(name)
    now = datetime.now(UTC)
    session.out.result(
        {"deployment": name, "revisions": revisions}, lambda c: views.history(c, revisions, now)
    )


# --- changing --------------------------------------------------------------------------------------

Timeout = Annotated[int, typer.Option(min=1, help="Seconds to wait for the rollout.")]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Show the change, validated by the API server; change nothing.")
]


def _dry_run(session: Session, action: str, name: str, change: str) -> NoReturn:
    """Prints what a mutation would change, once the API server has accepted it without storing it."""
    session.out.result(
        {"action": action, "dry_run": True, "deployment": name, "changed": bool(change), "diff": change},
        lambda c: c.print(change or "no change", markup=False, highlight=False),
    )
    session.out.say("server-side dry run: the API server accepted the change; nothing was changed")
    _exit(Exit.OK)


def _finish(session: Session, outcome: rollouts.Outcome, result: dict[str, Any]) -> None:
    result |= {"ok": outcome.ok, "reason": outcome.reason, "message": outcome.message}
    verdict = "done" if outcome.ok else "FAILED"
    session.out.result(
        result, lambda c: c.print(f"{result['action']} {verdict}: {outcome.message}", markup=False)
    )
    _exit(Exit.OK if outcome.ok else Exit.FAILED)


@app.command()
def rollout(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(help="The new image, e.g. ghcr.io/inkwell/inkwell:0.2.0.")],
    container: Annotated[str | None, typer.Option("--container", "-c", help="Container to update.")] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", "-l", help="Extra pod label key=value for the new pods.")
    ] = None,
    dry_run: DryRun = False,
    no_rollback: Annotated[
        bool, typer.Option("--no-rollback", help="Leave a failed rollout as it is.")
    ] = False,
    timeout: Timeout = 600,
) -> None:
    """Set the image and watch the rollout; a failed one is rolled back to the previous revision."""
    session, out = _session(ctx), _session(ctx).out
    labels = _labels(label)
    with _api_errors(session):
        cluster = session.cluster
        name = cluster.reads.find_deployment(session.release)
        before = cluster.reads.deployment(name)
        chosen = _container(before.images, container)
        template = cluster.reads.pod_template(name)
        # The chart labels pods with their version; a new image keeps that label true.
        if "app.kubernetes.io/version" in template.get("metadata", {}).get("labels", {}):
            labels = {"app.kubernetes.io/version": rollouts.image_tag(image)} | labels
        old, new = cluster.mutations.set_image(
            name, container=chosen, image=image, labels=labels, dry_run=dry_run
        )
        if dry_run:
            _dry_run(
                session, "rollout", name, rollouts.diff(old, new, name=f"deployment/{name} pod template")
            )
        if old == new:
            out.say(f"deployment/{name} already runs {image}")
        else:
            out.say(f"deployment/{name}: {chosen} {before.images[chosen]} -> {image}")
        outcome = rollouts.wait(cluster.reads, name, out, timeout=timeout)
        result: dict[str, Any] = {
            "action": "rollout",
            "deployment": name,
            "image": image,
            "rolled_back_to": None,
        }
        if not outcome.ok and not no_rollback:
            out.fail(f"rollout of {image} failed ({outcome.reason}): {outcome.message}")
            target = before.revision
            restored, _, _ = cluster.mutations.rollback(name, target)
            out.say(f"rolling back to revision {target} ({', '.join(restored.images.values())})")
            back = rollouts.wait(cluster.reads, name, out, timeout=timeout)
            result["rolled_back_to"] = target
            result["rollback_ok"] = back.ok
            # The restored template becomes a new revision number, as with `kubectl rollout undo`.
            message = (
                f"rolled back to revision {target} (now revision {back.deployment.revision})"
                if back.ok
                else f"rollback failed too: {back.message}"
            )
            reason = outcome.message.rstrip(".")
            outcome = rollouts.Outcome(False, outcome.reason, f"{reason}; {message}", back.deployment)
        result["revision"] = outcome.deployment.revision
        _finish(session, outcome, result)


@app.command()
def rollback(
    ctx: typer.Context,
    to_revision: Annotated[
        int | None, typer.Option("--to-revision", min=1, help="Revision to restore (default: the previous).")
    ] = None,
    dry_run: DryRun = False,
    timeout: Timeout = 600,
) -> None:
    """Restore an earlier revision's pod template, as `kubectl rollout undo` does, and wait."""
    session = _session(ctx)
    with _api_errors(session):
        cluster = session.cluster
        name = cluster.reads.find_deployment(session.release)
        current = cluster.reads.deployment(name).revision
        revisions = cluster.reads.revisions(name)
        if to_revision is None:
            previous = rollouts.previous_revision(revisions, current)
            if previous is None:
                session.out.fail(f"deployment/{name} has no revision before {current}")
                _exit(Exit.FAILED)
            to_revision = previous.revision
        if to_revision == current:
            message = f"deployment/{name} is already at revision {current}"
            session.out.result(
                {
                    "action": "rollback",
                    "deployment": name,
                    "restored": current,
                    "revision": current,
                    "ok": True,
                },
                lambda c: c.print(message, markup=False),
            )
            _exit(Exit.OK)
        target, old, new = cluster.mutations.rollback(name, to_revision, dry_run=dry_run)
        if dry_run:
            _dry_run(
                session, "rollback", name, rollouts.diff(old, new, name=f"deployment/{name} pod template")
            )
        session.out.say(
            f"deployment/{name}: revision {current} -> template of revision {to_revision} "
            f"({', '.join(target.images.values())})"
        )
        outcome = rollouts.wait(cluster.reads, name, session.out, timeout=timeout)
        result: dict[str, Any] = {
            "action": "rollback",
            "deployment": name,
            "restored": to_revision,
            "revision": outcome.deployment.revision,
        }
        _finish(session, outcome, result)


@app.command()
def restart(ctx: typer.Context, dry_run: DryRun = False, timeout: Timeout = 600) -> None:
    """Replace every pod (the restartedAt annotation), then wait like rollout."""
    session = _session(ctx)
    with _api_errors(session):
        cluster = session.cluster
        name = cluster.reads.find_deployment(session.release)
        at = datetime.now(UTC).replace(microsecond=0)
        old, new = cluster.mutations.restart(name, at, dry_run=dry_run)
        if dry_run:
            _dry_run(
                session, "restart", name, rollouts.diff(old, new, name=f"deployment/{name} pod template")
            )
        session.out.say(f"deployment/{name}: restartedAt {at.isoformat()}")
        outcome = rollouts.wait(cluster.reads, name, session.out, timeout=timeout)
        _finish(
            session,
            outcome,
            {"action": "restart", "deployment": name, "revision": outcome.deployment.revision},
        )


@app.command()
def scale(
    ctx: typer.Context,
    replicas: Annotated[int, typer.Argument(min=0, help="Pods wanted.")],
    adjust_hpa: Annotated[
        bool,
        typer.Option(
            "--adjust-hpa",
            help="With an HPA: set its minReplicas to N (and maxReplicas to N when it is lower) instead.",
        ),
    ] = False,
    dry_run: DryRun = False,
    timeout: Timeout = 600,
) -> None:
    """Scale the Deployment; refused (exit 2) when an HPA owns its replica count, unless --adjust-hpa."""
    session = _session(ctx)
    out = session.out
    with _api_errors(session):
        cluster = session.cluster
        name = cluster.reads.find_deployment(session.release)
        hpa = cluster.reads.hpa_for(name)
        result: dict[str, Any] = {"action": "scale", "deployment": name, "replicas": replicas, "hpa": None}
        if hpa is not None:
            if not adjust_hpa:
                out.fail(
                    f"horizontalpodautoscaler/{hpa.name} owns the replica count of deployment/{name} "
                    f"(min {hpa.min_replicas}, max {hpa.max_replicas}); a scale would be undone. "
                    f"Use --adjust-hpa to set its minimum to {replicas}."
                )
                _exit(Exit.USAGE)
            if replicas < 1:
                out.fail(
                    "an HPA cannot keep fewer than 1 pod; scale to 0 needs the HPA removed (helm values)"
                )
                _exit(Exit.USAGE)
            new_max = max(hpa.max_replicas, replicas)
            cluster.mutations.set_hpa_bounds(
                hpa.name, min_replicas=replicas, max_replicas=new_max, dry_run=dry_run
            )
            change = (
                f"horizontalpodautoscaler/{hpa.name}: min {hpa.min_replicas} -> {replicas}, "
                f"max {hpa.max_replicas} -> {new_max}"
            )
            if dry_run:
                _dry_run(session, "scale", name, change)
            out.say(change)
            result["hpa"] = {
                "name": hpa.name,
                "min": [hpa.min_replicas, replicas],
                "max": [hpa.max_replicas, new_max],
            }
            outcome = _wait_for_hpa(session, cluster, name, replicas, timeout)
        else:
            before = cluster.reads.deployment(name).desired
            cluster.mutations.scale(name, replicas, dry_run=dry_run)
            change = f"deployment/{name}: replicas {before} -> {replicas}"
            if dry_run:
                _dry_run(session, "scale", name, change)
            out.say(change)
            outcome = rollouts.wait(cluster.reads, name, out, timeout=timeout)
        _finish(session, outcome, result)


def _wait_for_hpa(
    session: Session, cluster: Cluster, name: str, minimum: int, timeout: int
) -> rollouts.Outcome:
    """The HPA applies its new minimum on its next sync; then the Deployment rolls like any scale."""
    deadline = time.monotonic() + timeout
    while cluster.reads.deployment(name).desired < minimum:
        if time.monotonic() >= deadline:
            d = cluster.reads.deployment(name)
            return rollouts.Outcome(False, "Timeout", f"the HPA did not scale to {minimum} in {timeout}s", d)
        time.sleep(0.5)
    return rollouts.wait(cluster.reads, name, session.out, timeout=max(1, deadline - time.monotonic()))


@app.command()
def migrate(
    ctx: typer.Context,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", "-l", help="Extra pod label key=value (e.g. a sidecar opt-out)."),
    ] = None,
    container: Annotated[str | None, typer.Option("--container", "-c", help="Container to copy.")] = None,
    timeout: Annotated[int, typer.Option(min=1, help="Seconds the migration may take.")] = 300,
    keep: Annotated[bool, typer.Option("--keep", help="Leave the Job and its pod for inspection.")] = False,
) -> None:
    """Run `inkwell migrate` as a Job made from the Deployment's pod template; print its log; clean up."""
    session = _session(ctx)
    labels = _labels(label)
    with _api_errors(session):
        cluster = session.cluster
        name = cluster.reads.find_deployment(session.release)
        chosen = _container(cluster.reads.deployment(name).images, container)
        result = migration.run(
            cluster,
            session.out,
            deployment=name,
            release=session.release,
            container=chosen,
            labels=labels,
            timeout=timeout,
            keep=keep,
        )
    session.out.result(result, lambda c: views.migration(c, result))
    if not result.succeeded:
        session.out.fail(f"migration failed: {result.message}")
    _exit(Exit.OK if result.succeeded else Exit.FAILED)


# --- from outside the cluster ----------------------------------------------------------------------


@app.command()
def smoke(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Argument(help="Public URL (the ingress), or http://127.0.0.1:8000 for make run.")
    ],
    internal: Annotated[
        smoking.Internal,
        typer.Option(
            help="Expect /metrics, /healthz, /readyz to be hidden (ingress) or exposed (the service itself); "
            "auto: exposed on loopback, hidden elsewhere."
        ),
    ] = smoking.Internal.auto,
    host: Annotated[str | None, typer.Option(help="Host header, to reach the ingress by address.")] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Do not verify TLS certificates.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 10.0,
) -> None:
    """Register, log in, publish, read, comment and delete through the public API; exit 1 on any failure."""
    session = _session(ctx)
    report = smoking.run(url, internal=internal, host=host, timeout=timeout, verify=not insecure)
    session.out.result(
        {"url": report.url, "internal": report.internal, "ok": report.ok, "steps": report.steps},
        lambda c: views.smoke(c, report),
    )
    _exit(Exit.OK if report.ok else Exit.FAILED)


@app.command()
def slo(
    ctx: typer.Context,
    prometheus: Annotated[str, typer.Option(help="Prometheus base URL.", envvar="INKWELL_OPS_PROMETHEUS")],
    window: Annotated[str, typer.Option(help="SLO window (a PromQL duration).")] = "30d",
) -> None:
    """Availability, latency, error budget left and burn rates; exit 3 when a budget is spent or burning."""
    session = _session(ctx)
    namespace = session.settings.namespace
    if namespace is None:
        with _api_errors(session):
            namespace = session.cluster.namespace
    client = slos.Prometheus(prometheus)
    try:
        report = slos.measure(client, namespace=namespace, release=session.release, window=window)
    except slos.PrometheusError as exc:
        session.out.fail(str(exc))
        _exit(Exit.FAILED)
    finally:
        client.close()
    data = {"healthy": report.healthy, "has_data": report.has_data, **_fields(report)}
    session.out.result(data, lambda c: views.slo(c, report))
    if not report.has_data:
        session.out.fail(f"no request series for release {session.release} in namespace {namespace}")
        _exit(Exit.FAILED)
    _exit(Exit.OK if report.healthy else Exit.DEGRADED)


def _fields(report: slos.SloReport) -> dict[str, Any]:
    data = to_data(report)
    assert isinstance(data, dict)
    return data
