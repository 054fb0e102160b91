"""`inkwell-ops`: the commands an SRE runs against an Inkwell release, with exit codes a script can branch on
(0 healthy or done, 1 failed, 2 usage or refused, 3 degraded, 4 unknown). Each command parses its arguments, calls one
action (ops.actions), shows the result and picks the exit code; what it does lives in the action."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from ops import config as userconfig
from ops import smoke as smoking
from ops import views
from ops import watch as watching
from ops.exitcodes import Exit
from ops.lazy import Lazy
from ops.output import Format, Output, to_data
from ops.results import AlreadyAt, BadOption, DryRun, Failed, Refused, Settled
from ops.slo import PrometheusError

if TYPE_CHECKING:
    from ops import actions, kube, troubleshoot
else:
    # The Kubernetes client takes 0.3 s to import: --help, usage errors and smoke never load it (ops.lazy).
    actions, kube, troubleshoot = Lazy("ops.actions"), Lazy("ops.kube"), Lazy("ops.troubleshoot")

app = typer.Typer(
    name="inkwell-ops",
    help="Operate an Inkwell release on Kubernetes. Exit codes: 0 healthy/succeeded, 1 failed, "
    "2 usage or refused, 3 degraded, 4 unknown (no data).",
    no_args_is_help=True,
    add_completion=True,
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
    request_timeout: float | None = userconfig.DEFAULT_REQUEST_TIMEOUT


class Session:
    """What a command needs: the settings, the output, and a cluster connection made on first use (smoke
    and slo never need one)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.out = Output(settings.output)
        self._cluster: kube.Cluster | None = None

    @property
    def cluster(self) -> kube.Cluster:
        if self._cluster is None:
            s = self.settings
            self._cluster = kube.Cluster(
                kube.Connection(
                    kubeconfig=s.kubeconfig,
                    context=s.context,
                    namespace=s.namespace,
                    impersonate=s.impersonate,
                    request_timeout=s.request_timeout,
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
def _errors(session: Session) -> Iterator[None]:
    """An action that cannot go on says why on stderr and exits 1; one refused as asked exits 2, and so
    does a missing or unusable kubeconfig (the invocation, not the cluster, is wrong)."""
    try:
        yield
    except kube.UnusableKubeconfig as exc:
        session.out.fail(str(exc))
        _exit(Exit.USAGE)
    except (kube.KubeError, Failed, PrometheusError) as exc:
        session.out.fail(str(exc))
        _exit(Exit.FAILED)
    except Refused as exc:
        session.out.fail(str(exc))
        _exit(Exit.USAGE)
    except BadOption as exc:
        raise typer.BadParameter(str(exc), param_hint=exc.option) from None


def _labels(values: list[str] | None) -> dict[str, str]:
    labels = {}
    for value in values or []:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{value!r} is not key=value", param_hint="--label")
        labels[key] = val
    return labels


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
    request_timeout: Annotated[
        str | None,
        typer.Option(
            "--request-timeout",
            envvar="INKWELL_OPS_REQUEST_TIMEOUT",
            help="How long one API request may take, as kubectl's (30s, 1m; 0: no limit). [default: 30s]",
        ),
    ] = None,
) -> None:
    # stdout is the result (`-o json` is parsed by scripts): httpx's per-request INFO lines must
    # not reach it, even where the embedding program has configured logging.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = Settings(kubeconfig, context, namespace, release, output, as_user)
    session = Session(_with_file_defaults(ctx, settings, request_timeout))
    ctx.obj = session
    ctx.call_on_close(session.close)


def _with_file_defaults(ctx: typer.Context, settings: Settings, request_timeout: str | None) -> Settings:
    """Flags > env > the config file's table for the kube context in use (ops.config) > built-ins."""
    try:
        found = userconfig.load(settings.context or userconfig.current_context(settings.kubeconfig))
    except userconfig.ConfigError as exc:
        Output(settings.output).fail(f"config file {exc}")
        _exit(Exit.USAGE)
    settings.request_timeout = found.request_timeout
    if request_timeout is not None:
        try:
            settings.request_timeout = userconfig.parse_duration(request_timeout)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--request-timeout") from None
    if settings.request_timeout is None:
        settings.request_timeout = userconfig.DEFAULT_REQUEST_TIMEOUT
    if settings.namespace is None:
        settings.namespace = found.namespace
    # typer's own click (typer._click) reports where a value came from; DEFAULT: no flag, no env var.
    source = ctx.get_parameter_source("release")
    if found.release and source is not None and source.name == "DEFAULT":
        settings.release = found.release
    if found.prometheus:
        # Click reads a command's default_map after its flag and env var, before its own default.
        commands = getattr(ctx.command, "commands", {})
        ctx.default_map = {name: {"prometheus": found.prometheus} for name in commands}
    return settings


# --- reading ---------------------------------------------------------------------------------------


@app.command()
def status(
    ctx: typer.Context,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Refresh every --interval seconds until Ctrl-C (exit 0).")
    ] = False,
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between refreshes with --watch.")] = 2.0,
) -> None:
    """The release at a glance; exit 3 when anything is degraded."""
    session = _session(ctx)

    def show() -> bool:
        found = actions.status(session.cluster, release=session.release)
        result = {"healthy": found.healthy, "problems": found.problems, "state": found.state}
        session.out.result(result, lambda console: views.status(console, found.state, found.problems))
        return found.healthy

    if watch:

        def refresh() -> None:
            try:
                show()
            except kube.UnusableKubeconfig:
                raise
            except kube.KubeError as exc:
                # A failed refresh is shown and the next one tried, as watch(1) keeps going.
                session.out.fail(str(exc))

        with _errors(session):
            watching.every(interval, refresh, session.out)
        _exit(Exit.OK)
    with _errors(session):
        healthy = show()
    _exit(Exit.OK if healthy else Exit.DEGRADED)


@app.command()
def releases(
    ctx: typer.Context,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Every namespace, not only -n's.")
    ] = False,
) -> None:
    """The Inkwell releases deployed in the namespace: release, chart, Helm revision, image, replicas."""
    session = _session(ctx)
    with _errors(session):
        found = actions.releases(session.cluster, all_namespaces=all_namespaces)
    now = datetime.now(UTC)
    session.out.result(
        {"releases": found}, lambda c: views.releases(c, found, now, namespaces=all_namespaces)
    )


@app.command()
def diagnose(ctx: typer.Context) -> None:
    """Find known failure modes and say what to do about each; exit 3 when there are any."""
    session = _session(ctx)
    with _errors(session):
        problems = actions.status(session.cluster, release=session.release).problems
    session.out.result({"problems": problems}, lambda console: views.findings(console, problems))
    _exit(Exit.DEGRADED if problems else Exit.OK)


@app.command()
def history(ctx: typer.Context) -> None:
    """The Deployment's revisions (from its ReplicaSets), with image and time."""
    session = _session(ctx)
    with _errors(session):
        found = actions.history(session.cluster, release=session.release)
    now = datetime.now(UTC)
    session.out.result(
        {"deployment": found.deployment, "revisions": found.revisions},
        lambda c: views.history(c, found.revisions, now),
    )


# --- changing --------------------------------------------------------------------------------------

Timeout = Annotated[int, typer.Option(min=1, help="Seconds to wait for the rollout.")]
# The container a command acts on (ops.actions.choose_container), and extra labels for the pods it makes.
Container = Annotated[
    str | None,
    typer.Option(
        "--container", "-c", help="The pod template's container (default: the only one, or inkwell)."
    ),
]
Labels = Annotated[
    list[str] | None,
    typer.Option("--label", "-l", help="Extra label key=value for the new pods (e.g. a sidecar opt-out)."),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Show the change, validated by the API server; change nothing.")
]


def _dry_run(session: Session, result: DryRun) -> NoReturn:
    """Prints what a mutation would change, once the API server has accepted it without storing it."""
    change = result.diff
    session.out.result(
        {
            "action": result.action,
            "dry_run": True,
            "deployment": result.deployment,
            "changed": bool(change),
            "diff": change,
        },
        lambda c: c.print(change or "no change", markup=False, highlight=False),
    )
    session.out.say("server-side dry run: the API server accepted the change; nothing was changed")
    _exit(Exit.OK)


def _finish(session: Session, result: Settled, details: dict[str, Any]) -> NoReturn:
    outcome = result.outcome
    data = {"action": result.action, "deployment": result.deployment, **details}
    data |= {"ok": outcome.ok, "reason": outcome.reason, "message": outcome.message}
    verdict = "done" if outcome.ok else "FAILED"
    session.out.result(data, lambda c: c.print(f"{result.action} {verdict}: {outcome.message}", markup=False))
    _exit(Exit.OK if outcome.ok else Exit.FAILED)


@app.command()
def rollout(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(help="The new image, e.g. ghcr.io/inkwell/inkwell:0.2.0.")],
    container: Container = None,
    label: Labels = None,
    dry_run: DryRunOption = False,
    no_rollback: Annotated[
        bool, typer.Option("--no-rollback", help="Leave a failed rollout as it is.")
    ] = False,
    timeout: Timeout = 600,
) -> None:
    """Set the image and watch the rollout; a failed one is rolled back to the previous revision."""
    session = _session(ctx)
    labels = _labels(label)
    with _errors(session):
        result = actions.rollout(
            session.cluster,
            session.out,
            release=session.release,
            image=image,
            container=container,
            labels=labels,
            dry_run=dry_run,
            roll_back=not no_rollback,
            timeout=timeout,
        )
    if isinstance(result, DryRun):
        _dry_run(session, result)
    details: dict[str, Any] = {"image": image, "rolled_back_to": result.rolled_back_to}
    if result.rolled_back_to is not None:
        details["rollback_ok"] = result.rollback_ok
    _finish(session, result, details | {"revision": result.outcome.deployment.revision})


@app.command()
def rollback(
    ctx: typer.Context,
    to_revision: Annotated[
        int | None, typer.Option("--to-revision", min=1, help="Revision to restore (default: the previous).")
    ] = None,
    dry_run: DryRunOption = False,
    timeout: Timeout = 600,
) -> None:
    """Restore an earlier revision's pod template, as `kubectl rollout undo` does, and wait."""
    session = _session(ctx)
    with _errors(session):
        result = actions.rollback(
            session.cluster,
            session.out,
            release=session.release,
            to_revision=to_revision,
            dry_run=dry_run,
            timeout=timeout,
        )
    if isinstance(result, DryRun):
        _dry_run(session, result)
    if isinstance(result, AlreadyAt):
        name, current = result.deployment, result.revision
        message = f"deployment/{name} is already at revision {current}"
        session.out.result(
            {"action": "rollback", "deployment": name, "restored": current, "revision": current, "ok": True},
            lambda c: c.print(message, markup=False),
        )
        _exit(Exit.OK)
    _finish(session, result, {"restored": result.restored, "revision": result.outcome.deployment.revision})


@app.command()
def restart(ctx: typer.Context, dry_run: DryRunOption = False, timeout: Timeout = 600) -> None:
    """Replace every pod (the restartedAt annotation), then wait like rollout."""
    session = _session(ctx)
    with _errors(session):
        result = actions.restart(
            session.cluster, session.out, release=session.release, dry_run=dry_run, timeout=timeout
        )
    if isinstance(result, DryRun):
        _dry_run(session, result)
    _finish(session, result, {"revision": result.outcome.deployment.revision})


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
    dry_run: DryRunOption = False,
    timeout: Timeout = 600,
) -> None:
    """Scale the Deployment; refused (exit 2) when an HPA owns its replica count, unless --adjust-hpa."""
    session = _session(ctx)
    with _errors(session):
        result = actions.scale(
            session.cluster,
            session.out,
            release=session.release,
            replicas=replicas,
            adjust_hpa=adjust_hpa,
            dry_run=dry_run,
            timeout=timeout,
        )
    if isinstance(result, DryRun):
        _dry_run(session, result)
    hpa = result.hpa
    moved = None if hpa is None else {"name": hpa.name, "min": list(hpa.minimum), "max": list(hpa.maximum),
                                      "desired": hpa.desired, "why": hpa.why}  # fmt: skip
    _finish(session, result, {"replicas": replicas, "hpa": moved})


@app.command()
def migrate(
    ctx: typer.Context,
    label: Labels = None,
    container: Container = None,
    timeout: Annotated[int, typer.Option(min=1, help="Seconds the migration may take.")] = 300,
    keep: Annotated[bool, typer.Option("--keep", help="Leave the Job and its pod for inspection.")] = False,
) -> None:
    """Run `inkwell migrate` as a Job made from the Deployment's pod template; print its log; clean up."""
    session = _session(ctx)
    labels = _labels(label)
    with _errors(session):
        result = actions.migrate(
            session.cluster,
            session.out,
            release=session.release,
            container=container,
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
            "auto: asks the URL's /readyz, exposed when the service answers it."
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
    """Availability, latency, error budget left and burn rates; exit 3 when a budget is spent or burning, 4
    when something has no data to judge by."""
    session = _session(ctx)
    namespace = session.settings.namespace
    with _errors(session):
        if namespace is None:
            namespace = session.cluster.namespace
        report = actions.slo(prometheus, namespace=namespace, release=session.release, window=window)
    data = to_data(report)
    assert isinstance(data, dict)
    data["alerts"] = [
        alert | {"state": a.state} for alert, a in zip(data["alerts"], report.alerts, strict=True)
    ]
    verdict = {"verdict": report.verdict, "healthy": report.healthy, "has_data": report.has_data}
    session.out.result(verdict | data, lambda c: views.slo(c, report))
    if not report.has_data:
        session.out.fail(
            f"no request series for release {session.release} in namespace {namespace}: every SLO is unknown"
        )
    codes = {"ok": Exit.OK, "degraded": Exit.DEGRADED, "unknown": Exit.UNKNOWN}
    _exit(codes[report.verdict])


# --- inside the release's pods: what the runbooks read (see ops.troubleshoot) ----------------------

Since = Annotated[str | None, typer.Option(help="Only what is newer than this: 30s, 15m, 2h, 1d.")]


def _seconds(duration: str) -> int:
    """A --since before any cluster is asked, so a mistyped one is a usage error (exit 2)."""
    try:
        return troubleshoot.seconds(duration, "--since")
    except BadOption as exc:
        raise typer.BadParameter(str(exc), param_hint=exc.option) from None


@app.command()
def logs(
    ctx: typer.Context,
    previous: Annotated[
        bool, typer.Option("--previous", "-p", help="The previous container's log: why it restarted.")
    ] = False,
    since: Since = None,
    tail: Annotated[int | None, typer.Option(min=0, help="Only the last N lines of each pod.")] = None,
    container: Container = None,
) -> None:
    """Every pod's log, each line prefixed with its pod; exit 1 when no pod's log could be read."""
    session = _session(ctx)
    since_seconds = None if since is None else _seconds(since)
    with _errors(session):
        found = troubleshoot.logs(
            session.cluster,
            release=session.release,
            container=container,
            previous=previous,
            since_seconds=since_seconds,
            tail=tail,
        )
    session.out.result(
        {"deployment": found.deployment, "previous": found.previous, "logs": found.logs},
        lambda c: troubleshoot.show_logs(c, found),
    )
    if session.out.format is not Format.table:  # the table says it on its own line already
        for log in found.logs:
            if log.text is None:
                session.out.fail(log.error)
    _exit(Exit.OK if found.ok else Exit.FAILED)


@app.command()
def events(
    ctx: typer.Context,
    since: Annotated[str, typer.Option(help="Only events newer than this: 30s, 15m, 2h, 1d.")] = "1h",
    warnings: Annotated[bool, typer.Option("--warnings", help="Only warnings.")] = False,
) -> None:
    """Events of the release's Deployment, ReplicaSets, pods (replaced ones too) and HPA, oldest first."""
    session = _session(ctx)
    window = _seconds(since)
    with _errors(session):
        found = troubleshoot.events(
            session.cluster, release=session.release, since_seconds=window, warnings_only=warnings
        )
    session.out.result({"events": found}, lambda c: troubleshoot.show_events(c, found))


@app.command()
def readyz(ctx: typer.Context) -> None:
    """Each pod's /readyz, asked from inside the cluster through the API server's pod proxy; exit 3 when
    a pod answers not ready, 1 when one cannot be reached."""
    session = _session(ctx)
    with _errors(session):
        found = troubleshoot.readyz(session.cluster, release=session.release)
    session.out.result({"pods": found}, lambda c: troubleshoot.show_readyz(c, found))
    if not all(r.reached for r in found):
        _exit(Exit.FAILED)
    _exit(Exit.OK if all(r.ready for r in found) else Exit.DEGRADED)


@app.command()
def top(ctx: typer.Context) -> None:
    """CPU and memory of each pod's containers, from metrics.k8s.io; exit 1, saying so, without it."""
    session = _session(ctx)
    with _errors(session):
        found = troubleshoot.top(session.cluster, release=session.release)
    session.out.result({"usage": found}, lambda c: troubleshoot.show_top(c, found))
