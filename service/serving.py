"""How `inkwell serve` runs uvicorn: graceful SIGTERM for Kubernetes and multi-worker metrics.

On SIGTERM a worker turns /readyz to 503 at once, keeps serving for `drain_seconds` (so load
balancers stop routing to it), then lets uvicorn finish in-flight requests within
`graceful_timeout_seconds` and exits 0. With several workers, prometheus_client's multiprocess
directory is emptied at start and each worker that exits or dies is marked dead, so gauges forget
it while its counters are kept.

Supervision tells a worker that is starting from one that hangs. uvicorn's supervisor pings every
worker with a 5 s timeout from the moment it is spawned, but a spawned worker answers only once it
has imported what unpickling its target needs, and on a busy 2-core machine that took longer: 13
workers were killed while starting in a 50 s load run, and after a `kill -9` of the one serving
worker nothing served for 10 s. Here a starting worker is asked (without waiting) whether it has
started, and is given `worker_start_timeout_seconds` to say yes; only a worker that has served is
held to `worker_healthcheck_seconds`. This module imports nothing of the app at the top, so the
worker's answering thread runs within a fraction of a second of the spawn.
"""

from __future__ import annotations

import gc
import os
import pickle
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from socket import socket
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess, Process

if TYPE_CHECKING:
    # Not at run time: a spawned worker imports this module before it can answer a health check,
    # and the settings' and health's imports (pydantic, SQLAlchemy, Alembic) took seconds there.
    from service.config import Settings

APP = "service.main:create_app"


class InkwellServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        from service import health

        health.start_draining()
        if sig == signal.SIGTERM and self.drain_seconds > 0 and not self._draining:
            self._draining = True
            timer = threading.Timer(self.drain_seconds, super().handle_exit, (sig, frame))
            timer.daemon = True
            timer.start()
            return
        super().handle_exit(sig, frame)

    async def startup(self, sockets: list[socket] | None = None) -> None:
        await super().startup(sockets)
        # Everything alive now (modules, the app, its routes and models) lives as long as the
        # process: frozen, out of the collector's sight, so a full collection no longer walks it.
        # A request allocates thousands of objects that die with it; the young generation is
        # collected every 10,000 allocations rather than 700. Measured (bench, two workers on one
        # core): p99 of the signed-in list 88 -> 14 ms, and a sixth less CPU per request.
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000, 20, 20)

    def run(self, sockets: list[socket] | None = None) -> None:
        # uvicorn re-raises the signal that stopped it once it has shut down; a SIGTERM we have
        # handled gracefully must end the process with 0, not 143.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        super().run(sockets)


class InkwellProcess(Process):
    """A uvicorn worker process that runs InkwellServer, and tells its supervisor when it has started
    without making it wait."""

    drain_seconds = 0.0

    def __init__(self, config: uvicorn.Config, sockets: list[socket]) -> None:
        super().__init__(config, sockets)
        self.started_at = 0.0
        self.ready = False
        self._asked = False

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = InkwellServer(self.config, self.drain_seconds)
        return self._server

    def start(self) -> None:
        self.started_at = time.monotonic()
        super().start()

    def has_started(self) -> bool:
        """Whether the worker has said it serves; asks it at most once at a time and never waits, so
        one worker still importing holds up neither the others' checks nor the signals."""
        try:
            if not self._asked:
                self.parent_conn.send(b"ping")
                self._asked = True
            while self.parent_conn.poll(0):
                self._asked = False
                self.ready = bool(self.parent_conn.recv()) or self.ready
        except (OSError, EOFError, pickle.UnpicklingError):
            return False
        return self.ready


class InkwellMultiprocess(Multiprocess):
    """uvicorn's supervisor, with our worker class, start-aware supervision (see the module's
    docstring) and prometheus_client's dead-worker marking."""

    def __init__(
        self,
        config: uvicorn.Config,
        sockets: list[socket],
        *,
        drain_seconds: float,
        start_timeout: float,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config, sockets)
        self.drain_seconds = drain_seconds
        self.start_timeout = start_timeout
        self.on_started = on_started

    def _new_process(self) -> InkwellProcess:
        process = InkwellProcess(self.config, self.sockets)
        process.drain_seconds = self.drain_seconds
        return process

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            process = self._new_process()
            process.start()
            self.processes.append(process)
        if self.on_started is not None:
            self.on_started()

    def _failing(self, process: InkwellProcess) -> str | None:
        """Why `process` must be replaced, or None while it serves or is still within its start."""
        if not process.process.is_alive():
            return "died"
        if not process.ready:
            if process.has_started():
                uvicorn.config.logger.info(
                    "worker %s started in %.1f s", process.pid, time.monotonic() - process.started_at
                )
                return None
            if time.monotonic() - process.started_at > self.start_timeout:
                return f"did not start within {self.start_timeout:g} s"
            return None
        if not process.is_alive(timeout=self.config.timeout_worker_healthcheck):
            # A worker killed while it was being asked closes its end of the pipe: the check fails at
            # once, before the worker can be reaped. Say that it died, not that it hung.
            process.process.join(1)
            if not process.process.is_alive():
                return "died"
            return f"did not answer a health check within {self.config.timeout_worker_healthcheck} s"
        return None

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for index, process in enumerate(self.processes):
            assert isinstance(process, InkwellProcess)
            reason = self._failing(process)
            if reason is None:
                continue
            process.kill()
            process.join()
            _mark_dead(process.pid)
            if self.should_exit.is_set():
                return
            uvicorn.config.logger.warning("worker %s %s; starting a new one", process.pid, reason)
            replacement = self._new_process()
            replacement.start()
            self.processes[index] = replacement

    def restart_all(self) -> None:
        # SIGHUP: replace each worker in turn (uvicorn's rolling restart), marking the old one dead;
        # each replacement has the start timeout to serve before the old one is let go.
        for index, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._new_process()
            new.start()
            if not new.wait_until_ready(self.start_timeout, self.should_exit):
                new.kill()
                new.join()
                return
            new.ready = True
            old.terminate()
            old.join()
            _mark_dead(old.pid)
            self.processes[index] = new

    def run(self) -> None:
        super().run()
        for process in self.processes:
            _mark_dead(process.pid)


def _mark_dead(pid: int | None) -> None:
    if pid is not None and "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def prepare_multiprocess_metrics(port: int) -> Path:
    """An empty directory for prometheus_client's per-worker files, exported to the workers."""
    directory = Path(
        os.environ.get("PROMETHEUS_MULTIPROC_DIR") or Path(tempfile.gettempdir()) / f"inkwell-metrics-{port}"
    )
    # Files left by a previous run would add its counts to ours.
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return directory


def serve(settings: Settings, *, host: str, port: int, workers: int, reload: bool, app: str = APP) -> None:
    """Run `app` (an import string of an ASGI app factory; Inkwell's by default, another in the
    benchmarks that compare variants of it) the way production runs it."""
    if workers > 1:
        prepare_multiprocess_metrics(port)
        if settings.cache_enabled and not settings.redis_url:
            # An in-process cache per worker would serve one worker's stale reads after another's write.
            os.environ["INKWELL_CACHE_ENABLED"] = "false"
        if settings.live_enabled and not settings.redis_url:
            # Likewise live updates: an in-process bus per worker would not carry one's events to another's sockets.
            os.environ["INKWELL_LIVE_ENABLED"] = "false"
    config = uvicorn.Config(
        app,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        # uvloop and httptools: with the pure-Python h11 protocol, keep-alive responses wait on
        # Nagle's algorithm (about 44 ms each).
        loop="uvloop",
        http="httptools",
        proxy_headers=False,  # the access log resolves X-Forwarded-For against trusted_proxies
        log_config=None,  # our structlog configuration handles uvicorn's loggers too
        access_log=False,  # one access line per request comes from our middleware
        timeout_graceful_shutdown=int(settings.graceful_timeout_seconds) or 1,
        # Longer than ingress-nginx keeps idle upstream connections (60 s): the proxy, not us, closes
        # them, so it never sends a request (a POST it will not retry) on a connection we just closed.
        timeout_keep_alive=75,
        # For a worker that has started: how long it may take to answer its supervisor's ping.
        timeout_worker_healthcheck=int(settings.worker_healthcheck_seconds) or 1,
        log_level=settings.log_level.lower(),
        server_header=False,  # no `server: uvicorn`: what runs here is nobody else's business
        # Live sockets (service.live): pings keep them open through the ingress's read timeout and
        # close those whose pong is a heartbeat late; client messages are small; no permessage-deflate:
        # its zlib state cost 40 KiB per socket (1,000 sockets: 90 -> 50 KiB each) and a fan-out
        # compresses the same frame once per socket (docs/live.md).
        ws_ping_interval=settings.live_heartbeat_seconds,
        ws_ping_timeout=settings.live_heartbeat_seconds,
        ws_max_size=64 * 1024,
        ws_per_message_deflate=False,
    )
    if settings.metrics_enabled and settings.metrics_port and not reload:
        from service import metrics_server  # only where it is used: the supervisor imports little

        metrics_server.start(settings.metrics_port, host)  # in the supervisor: every worker's metrics
    if reload:
        uvicorn.run(app, factory=True, host=host, port=port, reload=True, log_config=None, access_log=False)
    elif workers > 1:
        InkwellMultiprocess(
            config,
            [config.bind_socket()],
            drain_seconds=settings.drain_seconds,
            start_timeout=settings.worker_start_timeout_seconds,
            on_started=lambda: supervisor_started(settings, workers),
        ).run()
    else:
        InkwellServer(config, settings.drain_seconds).run()


def supervisor_started(settings: Settings, workers: int) -> None:
    """Runs once in the supervising process, right after it has spawned its workers and before it
    starts watching them: what the supervisor itself serves beside them starts here."""
    uvicorn.config.logger.info(
        "supervising %d workers (start timeout %g s, health check %g s)",
        workers,
        settings.worker_start_timeout_seconds,
        settings.worker_healthcheck_seconds,
    )
