"""``server.workers`` > 1: several worker processes serve one listening socket (one per core, typically).

One process of Python runs one event loop on one core; the request path (HTTP parsing, routing, SQLite point
reads) is CPU-bound, so a second core needs a second process. This supervisor:

1. prepares the data directory once (schema, first admin credential, first token-signing key), so workers never
   race to create them;
2. binds the listening socket(s) itself and logs ``registry listening on URL`` once;
3. starts ``server.workers`` processes (``multiprocessing`` spawn) that all accept on those sockets
   (:func:`registry.server.serve_worker`); worker 0 is the leader and alone runs the background jobs;
4. restarts a worker that dies (a crash loop — more than ``MAX_RESTARTS`` in ``RESTART_WINDOW`` seconds —
   stops the server with exit code 1);
5. on SIGTERM/SIGINT closes its copy of the sockets and sends SIGTERM to every worker, which drain like the
   one-process server (``server.graceful_timeout``); exits 0 when all exited cleanly.

State that must be shared is already in SQLite or on disk (uploads, their acknowledged sizes — a worker
without the running hash of an upload re-hashes its stored part — IAM with its generation counter, token
keys, the audit chain, the outbox); event-feed long polls see other workers' commits through
``_watch_commits``; Prometheus metrics are aggregated with prometheus_client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``, a fresh directory per run). What stays per process: the failed-login limiter
(a client spread over N workers gets up to N times ``auth.max_failures`` before lockout), documented in
docs/configuration.md.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from multiprocessing.queues import SimpleQueue
from types import FrameType

import trio
from hypercorn.config import Sockets
from hypercorn.utils import repr_socket_addr

from config import Settings
from registry.listen import ListenError, bind, hypercorn_config, log_listening

log = logging.getLogger("registry")

MAX_RESTARTS = 5
RESTART_WINDOW = 60.0
PARENT_CHECK_SECONDS = 1.0
PIPE_LIMIT = 60000  # below the pipe buffer (64 KiB): the write cannot block
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's multiprocess mode (registry/metrics.py)


def exec_supervisor(settings: Settings) -> int:
    """Replace this process (same pid, same signals and output) with a lean supervisor: the ``registry`` CLI
    has imported every subcommand's modules (~65 MiB), the supervisor needs ~30 MiB. The settings travel
    through an inherited pipe. Returns only if they do not fit the pipe (then supervises from here)."""
    data = pickle.dumps(settings)
    if len(data) >= PIPE_LIMIT:
        return supervise(settings)
    read_fd, write_fd = os.pipe()
    os.write(write_fd, data)
    os.close(write_fd)
    os.set_inheritable(read_fd, True)
    sys.stdout.flush()
    sys.stderr.flush()
    code = "import sys; from registry.workers import main; sys.exit(main(int(sys.argv[1])))"
    os.execv(sys.executable, [sys.executable, "-c", code, str(read_fd), "registry-serve-supervisor"])  # noqa: S606


def main(settings_fd: int) -> int:
    """Entry of the re-executed supervisor (:func:`exec_supervisor`)."""
    from registry.logs import setup_logging

    with os.fdopen(settings_fd, "rb") as pipe:
        settings: Settings = pickle.load(pipe)  # noqa: S301 - written by this process before exec
    setup_logging(settings.log.level, settings.log.format)
    return supervise(settings)


def supervise(settings: Settings) -> int:
    """Run ``server.workers`` worker processes until SIGTERM/SIGINT; the process exit code."""
    context = multiprocessing.get_context("spawn")
    prepare = context.Process(target=_prepare_main, args=(settings,), name="registry-prepare")
    prepare.start()
    prepare.join()
    if prepare.exitcode != 0:
        log.critical("preparing %s failed (exit code %s)", settings.storage.root, prepare.exitcode)
        return 1
    config = hypercorn_config(settings)
    try:
        sockets = bind(config, settings.server.listen)
    except ListenError as exc:
        log.critical("%s", exc)
        return 1
    listening = [*sockets.secure_sockets, *sockets.insecure_sockets]
    try:
        metrics_dir = tempfile.mkdtemp(prefix="registry-metrics-")
    except OSError:  # a read-only root filesystem without a writable TMPDIR: use the data directory
        metrics_dir = tempfile.mkdtemp(prefix=".metrics-", dir=settings.storage.root)
    os.environ[MULTIPROC_ENV] = metrics_dir  # inherited by the workers; read when they import prometheus_client
    binds = [
        f"{scheme}://{repr_socket_addr(sock.family, sock.getsockname())}"
        for scheme, group in (("https", sockets.secure_sockets), ("http", sockets.insecure_sockets))
        for sock in group
    ]

    def announce() -> None:
        for url in binds:
            log_listening(settings, url)

    try:
        return _Supervisor(settings, sockets, context).run(announce)
    finally:
        for sock in listening:
            sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _prepare_main(settings: Settings) -> None:
    """In a child process, so the supervisor never loads the application (it stays ~30 MiB)."""
    from registry.app import open_registry
    from registry.logs import setup_logging

    setup_logging(settings.log.level, settings.log.format)

    async def prepare() -> None:
        # Opening the registry is the preparation: schema, first admin credential, first token-signing key.
        async with open_registry(settings):
            return

    trio.run(prepare)


class _Supervisor:
    def __init__(self, settings: Settings, sockets: Sockets, context: SpawnContext) -> None:
        self.settings = settings
        self.sockets = sockets
        self.context = context
        self.workers: list[BaseProcess | None] = [None] * settings.server.workers
        self.restarts: list[float] = []
        self.stopping: str | None = None
        self.ready = context.SimpleQueue()  # worker indexes, put once each is serving

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = signal.Signals(signum).name

    def _start(self, index: int) -> None:
        args = (self.settings, self.sockets, index, self.ready, os.getpid())
        process = self.context.Process(target=_worker_main, args=args, name=f"registry-worker-{index}")
        process.start()
        self.workers[index] = process
        log.info("worker %d started (pid %s)", index, process.pid)

    def run(self, on_ready: Callable[[], None]) -> int:
        """Start the workers, call ``on_ready`` once all of them serve, restart the ones that die, stop."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for index in range(len(self.workers)):
                self._start(index)
            failed = self._watch(on_ready)
            return self._stop() or failed
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _watch(self, on_ready: Callable[[], None]) -> int:
        """Call ``on_ready`` when every worker served once; restart dead workers until asked to stop; 1 after
        a crash loop."""
        serving: set[int] = set()
        announced = False
        while self.stopping is None:
            time.sleep(0.1)
            while not self.ready.empty():
                serving.add(self.ready.get())
            if not announced and len(serving) == len(self.workers):
                on_ready()
                announced = True
            for index, process in enumerate(self.workers):
                if process is None or process.is_alive() or self.stopping is not None:
                    continue
                log.error("worker %d (pid %s) exited with code %s; restarting", index, process.pid, process.exitcode)
                _mark_dead(process.pid)
                now = time.monotonic()
                self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW] + [now]
                if len(self.restarts) > MAX_RESTARTS:
                    log.critical("workers keep exiting (%d restarts in %.0f s): stopping", MAX_RESTARTS, RESTART_WINDOW)
                    return 1
                self._start(index)
        log.info("received %s: draining connections in %d workers", self.stopping, len(self.workers))
        return 0

    def _stop(self) -> int:
        """Close our copy of the sockets (new connections are refused once the workers closed theirs), SIGTERM
        every worker, wait for the drain; 1 if one had to be killed or exited non-zero."""
        for sock in [*self.sockets.secure_sockets, *self.sockets.insecure_sockets]:
            sock.close()
        alive = [p for p in self.workers if p is not None and p.is_alive()]
        for process in alive:
            if process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.server.graceful_timeout + 10
        code = 0
        for process in alive:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("worker pid %s did not stop in time: killing it", process.pid)
                process.kill()
                process.join()
            # -SIGTERM: our SIGTERM arrived before the worker could handle it (it had served nothing yet).
            if process.exitcode not in (0, -signal.SIGTERM):
                code = 1
        return code


def _mark_dead(pid: int | None) -> None:
    if pid is None or MULTIPROC_ENV not in os.environ:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def _worker_main(settings: Settings, sockets: Sockets, index: int, ready: SimpleQueue[int], parent: int) -> None:
    """Entry point of a worker process (spawned: imports everything afresh). ``parent``: the supervisor's pid."""
    # Until the app serves, a SIGTERM only marks the stop; the worker then starts serving and drains at once
    # (so a stop during start-up is still a clean exit). Ctrl-C in a terminal reaches the whole process group:
    # the supervisor relays it as SIGTERM.
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from registry.logs import setup_logging
    from registry.server import serve_worker

    setup_logging(settings.log.level, settings.log.format)

    async def shutdown() -> None:
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            while not stop and os.getppid() == parent:
                with trio.move_on_after(PARENT_CHECK_SECONDS):
                    async for _ in signals:
                        log.info("worker %d: draining connections", index)
                        return
            if stop:
                log.info("worker %d: draining connections", index)
            else:
                log.error("worker %d: the supervisor (pid %d) is gone: draining connections", index, parent)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(serve_worker, settings, sockets=sockets, leader=index == 0, shutdown=shutdown))
            ready.put(index)

    trio.run(main)
