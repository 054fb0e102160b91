"""Locust entry point: Conduit's traffic mix (loadtests/mix.py) against --host, in the shape named by
--shape, judged by SLO gates (loadtests/slo.toml) when locust quits.

    uv run locust -f loadtests/locustfile.py --headless --host https://staging.example \\
        --shape ramp -u 100 --csv results/ramp --html results/ramp.html
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

import flask
import gevent
from locust import LoadTestShape, constant, events, task
from locust.runners import STATE_RUNNING, STATE_SPAWNING, MasterRunner, WorkerRunner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV
from rich.console import Console
from rich.table import Table

from loadtests import gates, live, mix
from loadtests.conduit import (
    PASSWORD,
    RNG,
    TAGS,
    WRITER_PREFIX,
    ConduitUser,
    RequestFailed,
    credentials_from_env,
    text,
)
from loadtests.shapes import SHAPES, Schedule, ShapeParams, StageRecorder, build, find_knee

__all__ = ["AnonymousReader", "LiveListener", "NamedShape", "SignedInReader", "Writer"]

logger = logging.getLogger(__name__)

HOME = f"/api/articles?limit={mix.PAGE_SIZE}&offset=0"


def _list_check(body: Any) -> str | None:
    if not isinstance(body["articles"], list) or not isinstance(body["articlesCount"], int):
        return "not an article list"
    return None


class AnonymousReader(ConduitUser):
    """Reads without signing in: the home page, a tag, an article and its comments."""

    weight = mix.USER_WEIGHTS["anonymous"]

    @task(mix.ANONYMOUS["home"])
    def home(self) -> None:
        self.call("GET", HOME, name="/api/articles", check=_list_check)

    @task(mix.ANONYMOUS["tag"])
    def tag(self) -> None:
        tag = RNG.choice(self.world.tags or list(TAGS))

        def tagged(body: Any) -> str | None:
            if any(tag not in article["tagList"] for article in body["articles"]):
                return f"an article without tag {tag!r}"
            return None

        self.call(
            "GET",
            f"/api/articles?tag={tag}&limit={mix.PAGE_SIZE}&offset=0",
            name="/api/articles?tag=[tag]",
            check=tagged,
        )

    @task(mix.ANONYMOUS["article"])
    def article(self) -> None:
        read_article(self)

    @task(mix.ANONYMOUS["comments"])
    def comments(self) -> None:
        slug = RNG.choice(self.world.slugs)
        self.call(
            "GET",
            f"/api/articles/{slug}/comments",
            name="/api/articles/[slug]/comments",
            check=lambda body: None if isinstance(body["comments"], list) else "no comment list",
        )


def read_article(user: ConduitUser) -> None:
    slug = RNG.choice(user.world.slugs)
    user.call(
        "GET",
        f"/api/articles/{slug}",
        name="/api/articles/[slug]",
        check=lambda body: None if body["article"]["slug"] == slug else "another article came back",
    )


class SignedInReader(ConduitUser):
    """Signed in: their feed (of the authors they follow), the home page as themselves, articles,
    favouriting and unfavouriting, following and unfollowing."""

    weight = mix.USER_WEIGHTS["signed_in"]

    def setup(self) -> None:
        if self.token is None:
            self.sign_in("lt-reader-")
        self.favourites: set[str] = set()
        # One author followed for good, so the feed has articles; the others come and go.
        self.followed = {author for author in self.world.authors if author != self.username}
        self.always = min(self.followed, default=None)
        for author in self.followed:
            self.need(self.follow_request(author, on=True))

    def follow_request(self, author: str, *, on: bool) -> Any:
        return self.call(
            "POST" if on else "DELETE",
            f"/api/profiles/{author}/follow",
            name="/api/profiles/[username]/follow",
            check=lambda body: None if body["profile"]["following"] is on else f"following is not {on}",
        )

    @task(mix.SIGNED_IN["feed"])
    def feed(self) -> None:
        def followed_only(body: Any) -> str | None:
            if problem := _list_check(body):
                return problem
            if self.always and not body["articles"]:
                return "empty feed while following an author with articles"
            if any(not article["author"]["following"] for article in body["articles"]):
                return "an article by an author not followed"
            return None

        self.call(
            "GET",
            f"/api/articles/feed?limit={mix.PAGE_SIZE}&offset=0",
            name="/api/articles/feed",
            check=followed_only,
        )

    @task(mix.SIGNED_IN["home"])
    def home(self) -> None:
        self.call("GET", HOME, name="/api/articles", check=_list_check)

    @task(mix.SIGNED_IN["article"])
    def article(self) -> None:
        read_article(self)

    @task(mix.SIGNED_IN["favourite"])
    def favourite(self) -> None:
        slug = RNG.choice(self.world.slugs)
        on = slug not in self.favourites

        def toggled(body: Any) -> str | None:
            article = body["article"]
            if article["favorited"] is not on:
                return f"favorited is not {on}"
            if on and article["favoritesCount"] < 1:
                return "favourited, yet no favourites counted"
            return None

        if (
            self.call(
                "POST" if on else "DELETE",
                f"/api/articles/{slug}/favorite",
                name="/api/articles/[slug]/favorite",
                check=toggled,
            )
            is not None
        ):
            (self.favourites.add if on else self.favourites.discard)(slug)

    @task(mix.SIGNED_IN["follow"])
    def follow(self) -> None:
        candidates = [author for author in self.world.authors if author not in (self.always, self.username)]
        if not candidates:
            return
        author = RNG.choice(candidates)
        on = author not in self.followed
        if self.follow_request(author, on=on) is not None:
            (self.followed.add if on else self.followed.discard)(author)


class Writer(ConduitUser):
    """Registers, then publishes, comments, edits and deletes its own articles and comments, and logs
    in again now and then; deletes what it still has when it stops."""

    weight = mix.USER_WEIGHTS["writer"]

    def setup(self) -> None:
        self.articles: list[str] = []
        self.comments: list[tuple[str, int]] = []
        credentials = credentials_from_env()
        if credentials is None:
            self.register(WRITER_PREFIX)
            credentials = (f"{self.username}@example.com", PASSWORD)
        else:
            self.login(*credentials)
        self.credentials: tuple[str, str] = credentials

    def on_stop(self) -> None:
        if not self.is_set_up:
            return
        for slug, comment in self.comments:
            self.call(
                "DELETE",
                f"/api/articles/{slug}/comments/{comment}",
                name="/api/articles/[slug]/comments/[id]",
                expect=204,
            )
        for slug in self.articles:
            self.call("DELETE", f"/api/articles/{slug}", name="/api/articles/[slug]", expect=204)
        self.comments, self.articles = [], []

    @task(mix.WRITER["publish"])
    def publish_own(self) -> None:
        if len(self.articles) >= mix.MAX_OWN_ARTICLES:
            self.delete_own()
        slug = self.publish(RNG.sample(TAGS, RNG.randint(1, 3)))
        if slug is not None:
            self.articles.append(slug)

    @task(mix.WRITER["comment"])
    def comment_on(self) -> None:
        if RNG.random() < mix.POPULAR_COMMENT_SHARE:
            slug = RNG.choice(self.world.popular)  # where the live listeners are
        else:
            slug = RNG.choice(self.world.slugs + self.articles)
        with live.LEDGER.posting():
            sent_at = time.time()  # wall clock: compared with listeners' on other machines
            comment = self.comment(slug, live.stamped(text(12), sent_at))
            if comment is not None:
                live.LEDGER.record(slug, comment, sent_at, time.time())
        if comment is not None:
            self.comments.append((slug, comment))

    @task(mix.WRITER["edit"])
    def edit_own(self) -> None:
        if not self.articles:
            self.publish_own()
            return
        slug = RNG.choice(self.articles)
        body = f"Edited {uuid.uuid4().hex[:8]}. {text(60)}"
        self.call(
            "PUT",
            f"/api/articles/{slug}",
            name="/api/articles/[slug]",
            json={"article": {"body": body}},
            check=lambda b: (
                None
                if b["article"]["body"] == body and b["article"]["slug"] == slug
                else "the edit did not come back"
            ),
        )

    @task(mix.WRITER["delete"])
    def delete_own(self) -> None:
        if not self.articles:
            return
        slug = self.articles.pop(0)
        self.comments = [(s, c) for s, c in self.comments if s != slug]  # gone with the article
        self.call("DELETE", f"/api/articles/{slug}", name="/api/articles/[slug]", expect=204)

    @task(mix.WRITER["uncomment"])
    def delete_comment(self) -> None:
        if not self.comments:
            return
        slug, comment = self.comments.pop(0)
        self.call(
            "DELETE",
            f"/api/articles/{slug}/comments/{comment}",
            name="/api/articles/[slug]/comments/[id]",
            expect=204,
        )

    @task(mix.WRITER["login"])
    def log_in_again(self) -> None:
        with contextlib.suppress(RequestFailed):  # counted as a failure; the old token still works
            self.login(*self.credentials)


class LiveListener(ConduitUser):
    """An open article page: a WebSocket to /api/live subscribed to the popular articles, reading the
    comments the writers post there (loadtests/live.py counts them), anonymous as most readers are.
    It stays after the writers stop, until no comment has been posted for a settle time."""

    weight = mix.USER_WEIGHTS["listener"]
    wait_time = constant(0)  # its task is reading the socket; a failed connect waits in `listen`

    def setup(self) -> None:
        assert self.host is not None
        self.socket = live.Listener(self.host, self.world.popular)

    @task
    def listen(self) -> None:
        if not self.socket.listen(mix.LISTEN_SECONDS):
            gevent.sleep(mix.THINK_SECONDS[0])  # could not connect: counted, tried again after a think
        for slug in self.socket.refetch:
            # A resync: what was missed is re-fetched over REST, as docs/live.md tells clients to.
            self.call("GET", f"/api/articles/{slug}/comments", name="/api/articles/[slug]/comments")
        self.socket.refetch.clear()

    def on_stop(self) -> None:
        if not self.is_set_up:
            return
        try:
            # The writers stop with it (on every worker at once): it keeps reading for a settle time,
            # and longer while this process's writers still post (bounded).
            started = time.monotonic()
            deadline = started + mix.LISTEN_SETTLE_LIMIT_SECONDS
            while time.monotonic() < deadline and (
                time.monotonic() - started < mix.LISTEN_SETTLE_SECONDS
                or live.LEDGER.quiet_for() < mix.LISTEN_SETTLE_SECONDS
            ):
                self.socket.listen(0.5)
        finally:
            self.socket.close()


# The live listeners' records are counted on the master (loadtests/live.py). A headless master quits
# by telling its workers "quit" and waiting half a second for their last report (locust's
# MasterRunner.quit): too short for listeners that stay a settle time after the writers. So, as the
# master stops, it asks every worker to stop its users itself and answer with its records, and waits
# for the answers (bounded by --stop-timeout and a margin).
STOP_AND_COUNT = "inkwell_live_stop_and_count"
FINAL_TALLY = "inkwell_live_final_tally"
_final_tallies: set[str] = set()


@events.init.add_listener
def live_messages(environment: Any, **_kwargs: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):

        def stop_and_count(msg: Any, **_: Any) -> None:
            # The users stop as at the end of a run (writers, and listeners after their settle), but
            # the worker stays for the master's "quit", which then finds nothing left to stop.
            runner.stop_users(dict(runner.user_classes_count))
            runner.send_message(FINAL_TALLY, live.LEDGER.to_json())

        runner.register_message(STOP_AND_COUNT, stop_and_count, concurrent=True)
    elif isinstance(runner, MasterRunner):

        def final_tally(msg: Any, **_: Any) -> None:
            if msg.node_id not in _final_tallies:  # once per worker and stop
                live.LEDGER.merge(msg.data)
                _final_tallies.add(msg.node_id)

        runner.register_message(FINAL_TALLY, final_tally)


@events.test_start.add_listener
def new_live_records(**_kwargs: Any) -> None:
    live.LEDGER.reset()  # on every process: the master's merged records and each worker's own


@events.test_stopping.add_listener
def let_listeners_settle(environment: Any, **_kwargs: Any) -> None:
    runner = environment.runner
    if not isinstance(runner, MasterRunner) or not runner.reported_user_classes_count.get("LiveListener"):
        return
    workers = {client.id for client in runner.clients.all}
    _final_tallies.clear()
    runner.send_message(STOP_AND_COUNT)
    deadline = time.monotonic() + environment.stop_timeout + mix.LISTEN_SETTLE_LIMIT_SECONDS + 15
    while not workers <= _final_tallies and time.monotonic() < deadline:
        gevent.sleep(0.2)
    if not workers <= _final_tallies:
        logger.error("no final live tally from workers %s: the count is partial", workers - _final_tallies)


# -- options, shape and verdict -----------------------------------------------------------------


class NamedShape(LoadTestShape):
    """The shape named by --shape (or INKWELL_LOADTEST_SHAPE), sized by -u, -r and -t, which it reads
    itself (use_common_options), so the web UI's fields work too."""

    use_common_options: ClassVar[bool] = True
    # The options given on the command line, before headless mode fills in -u 1 -r 1 (locustfile init).
    initial_options: ClassVar[ShapeParams | None] = None

    def __init__(self) -> None:
        super().__init__()
        self.schedule: Schedule | None = None
        self.recorder: StageRecorder | None = None

    def reset_time(self) -> None:
        super().reset_time()
        self.schedule = None  # a new start in the web UI reads the options afresh

    def _build(self) -> Schedule:
        assert self.runner is not None
        options = self.runner.environment.parsed_options
        params = ShapeParams.from_options(options)
        if getattr(options, "headless", False) and self.initial_options is not None:
            params = self.initial_options
        return build(getattr(options, "shape", "steady"), params)

    def tick(self) -> tuple[int, float] | None:
        if self.schedule is None:
            self.schedule = self._build()
            self.recorder = StageRecorder(self.schedule)
        assert self.runner is not None
        assert self.recorder is not None
        elapsed = self.get_run_time()
        total = self.runner.stats.total
        self.recorder.observe(elapsed, total.num_requests, total.num_failures, total.response_times)
        return self.schedule.tick(elapsed)


@events.init_command_line_parser.add_listener
def add_options(parser: Any) -> None:
    # On the parser itself, not an argument group: locust's web UI shows only the options its own
    # add_argument registered (include_in_web_ui), so the shape, steps and gates are fields there.
    parser.add_argument(
        "--shape",
        choices=SHAPES,
        default=os.environ.get("INKWELL_LOADTEST_SHAPE", "steady"),
        help="steady, ramp (steps up to -u: finds the knee), spike or soak; sized by -u, -r and -t",
    )
    parser.add_argument("--step-users", type=int, default=10, help="ramp: users added per step")
    parser.add_argument("--step-seconds", type=float, default=30.0, help="ramp: seconds each step is held")
    parser.add_argument(
        "--spike-factor", type=float, default=5.0, help="spike: peak users as a multiple of -u"
    )
    parser.add_argument("--slo-file", default=str(gates.DEFAULT_SLO_FILE), help="the gates (TOML)")
    parser.add_argument(
        "--gate-p95-ms", type=float, default=None, help="p95 limit for every group and the total"
    )
    parser.add_argument(
        "--gate-p99-ms", type=float, default=None, help="p99 limit for every group and the total"
    )
    parser.add_argument(
        "--gate-max-failure-ratio", type=float, default=None, help="largest share of failed requests"
    )
    parser.add_argument("--gate-min-rps", type=float, default=None, help="fewest requests per second")
    parser.add_argument(
        "--slo-report",
        default=None,
        include_in_web_ui=False,  # a path on the machine locust runs on, not a form field
        help="write the verdict as JSON here (default: <--csv prefix>_slo.json when --csv is given)",
    )


def _limit(value: Any) -> float | None:
    """A gate's limit: a number from the command line, or the web UI's text field ("" when left empty;
    locust keeps a form value of an option that defaults to None as the string it was sent)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return float(value)


@events.init.add_listener
def remember_options(environment: Any, **_kwargs: Any) -> None:
    if environment.parsed_options is not None:
        # Read before headless mode replaces a missing -u and -r with 1, so each shape's defaults hold.
        NamedShape.initial_options = ShapeParams.from_options(environment.parsed_options)


def stage_table(shape: NamedShape) -> Table | None:
    if shape.recorder is None or not shape.recorder.results:
        return None
    results = shape.recorder.results
    knee = find_knee(results) if shape.schedule and shape.schedule.name == "ramp" else None
    table = Table(
        title=f"Stages of the {shape.schedule.name if shape.schedule else ''} shape", title_justify="left"
    )
    for column in ("stage", "users", "rps", "p50 ms", "p95 ms", "p99 ms", "failures"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for index, result in enumerate(results):
        table.add_row(
            result.label + ("  ← knee" if index == knee else ""),
            str(result.users),
            f"{result.rps:.1f}",
            f"{result.p50_ms:.0f}",
            f"{result.p95_ms:.0f}",
            f"{result.p99_ms:.0f}",
            f"{result.failure_ratio:.2%}",
        )
    return table


def write_final_csv(environment: Any, prefix: str) -> None:
    """Rewrites <prefix>_stats.csv and _failures.csv with the final numbers: locust rewrites them once
    a second, and the last requests (writers deleting their articles as they stop) can miss that."""
    writer = StatsCSV(environment, PERCENTILES_TO_REPORT)
    for suffix, write in (("stats", writer.requests_csv), ("failures", writer.failures_csv)):
        path = Path(f"{prefix}_{suffix}.csv")
        partial = path.with_suffix(".csv.partial")
        with partial.open("w", newline="") as output:
            write(csv.writer(output))
        # A new file, not the one locust's writer still holds open and would overwrite.
        os.replace(partial, path)


def judge_now(environment: Any, *, quiet: bool = False) -> tuple[gates.Verdict, gates.Observation, Console]:
    """The gates applied to the stats as they stand, the totals, and a console that recorded the stages
    and the verdict as the terminal shows them (`quiet`: recorded only, not printed)."""
    options = environment.parsed_options
    config = gates.SloConfig.load(Path(options.slo_file)).overridden(
        p95_ms=_limit(options.gate_p95_ms),
        p99_ms=_limit(options.gate_p99_ms),
        max_failure_ratio=_limit(options.gate_max_failure_ratio),
        min_rps=_limit(options.gate_min_rps),
    )
    total, groups = gates.observations(environment.stats, config.latency_excludes, config.not_requests)
    tally = live.LEDGER.tally()
    count = gates.LiveCount(tally.expected, tally.delivered, tally.resynced, tally.lost)
    verdict = gates.evaluate(config, total, groups, count if tally.listeners else None)
    console = Console(highlight=False, width=150, record=True, file=io.StringIO() if quiet else None)
    shape = environment.shape_class
    stages = stage_table(shape) if isinstance(shape, NamedShape) else None
    if stages is not None:
        console.print(stages)
    gates.print_verdict(verdict, console)
    return verdict, total, console


@events.init.add_listener
def verdict_in_downloaded_reports(environment: Any, **_kwargs: Any) -> None:
    """The web UI's "Download report" renders the HTML report afresh, without the verdict the quitting
    hook adds to --html: it gets the verdict of the run until then."""
    if environment.web_ui is None or environment.parsed_options is None:
        return

    @environment.web_ui.app.after_request
    def add_verdict(response: Any) -> Any:
        if flask.request.path != "/stats/report" or response.status_code != 200:
            return response
        verdict, _total, console = judge_now(environment, quiet=True)
        runner = environment.runner
        running = runner is not None and runner.state in {STATE_SPAWNING, STATE_RUNNING}
        page = gates.with_verdict(response.get_data(as_text=True), verdict, console, so_far=running)
        response.set_data(page)
        return response


@events.quitting.add_listener
def judge(environment: Any, **_kwargs: Any) -> None:
    """On the master (or a lone locust): the verdict table, the JSON report and the exit code."""
    if isinstance(environment.runner, WorkerRunner) or environment.parsed_options is None:
        return
    options = environment.parsed_options
    verdict, total, console = judge_now(environment)
    shape = environment.shape_class
    # locust wrote its HTML report just before quitting: the verdict goes on top of it.
    html = getattr(options, "html_file", None)
    if html and Path(html).is_file():
        gates.add_to_html_report(Path(html), verdict, console)
    report = options.slo_report or (f"{options.csv_prefix}_slo.json" if options.csv_prefix else None)
    if report:
        extra: dict[str, Any] = {
            "shape": getattr(options, "shape", None),
            "host": environment.host,
            "live": live.LEDGER.tally().to_json(),
        }
        if isinstance(shape, NamedShape) and shape.recorder is not None:
            extra["stages"] = [{**vars(result), "rps": result.rps} for result in shape.recorder.results]
        gates.write_report(Path(report), verdict, total, extra)
    if options.csv_prefix:
        write_final_csv(environment, options.csv_prefix)
    # Set either way: the gates, not locust's "any error at all", decide the exit code.
    environment.process_exit_code = 0 if verdict.passed else 1
