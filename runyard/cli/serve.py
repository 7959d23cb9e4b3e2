"""Commands that start long-running processes: server, worker, up."""

from __future__ import annotations

import fcntl
import gc
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import suppress
from types import FrameType
from typing import Any, NoReturn, TextIO

import uvicorn

from runyard.cli.context import console, errors
from runyard.errors import ConfigError
from runyard.operations import Runyard
from runyard.server.app import create_app
from runyard.server.memory import fewer_malloc_arenas
from runyard.settings import Settings
from runyard.worker.worker import Worker, WorkerConfig


class Server:
    """A Runyard server on a bound socket, announced in the data directory: one process, or
    (PostgreSQL) ``settings.processes`` processes serving that one socket."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        _check_processes(settings)
        fewer_malloc_arenas()  # before any thread of the server starts
        self._lock = _lock_sqlite(settings)
        # IPPROTO_TCP named explicitly: asyncio then sets TCP_NODELAY on every connection
        # (without it, keep-alive requests wait ~40 ms for delayed ACKs).
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((settings.host, settings.port))
            # Accept connections from now on (they queue until uvicorn serves them), so
            # that server.json never names a port that refuses connections.
            self.sock.listen(2048)
        except OSError as exc:
            self.sock.close()
            raise ConfigError(
                f"cannot listen on {settings.host}:{settings.port} ({exc.strerror}); is another "
                "server running there? Choose another with --port (0: any free port)",
                key="RUNYARD_PORT",
            ) from None
        self.runyard = Runyard(settings).open()
        self.runyard.task_types.install_builtin()
        self.admin_token = self.runyard.auth.ensure_admin_token()
        self.url = f"http://{settings.host}:{self.sock.getsockname()[1]}"
        self.uvicorn = _Uvicorn(uvicorn_config(self.runyard), self.runyard)
        self.exit_code = 0
        self.on_stop: list[Callable[[], None]] = []
        self._handlers: dict[int, Any] = {}  # the stop signals' handlers before announce()

    def announce(self) -> None:
        if self.admin_token:
            console.print(
                f"Created the admin token (shown once; also stored in "
                f"{self.settings.admin_token_file}):\n  {self.admin_token}"
            )
        self._handlers = {sig: signal.signal(sig, self._stop_signal) for sig in STOP_SIGNALS}
        # Written whole, then renamed: a client never reads half of it.
        staging = self.settings.server_file.with_suffix(f".{os.getpid()}.tmp")
        staging.write_text(json.dumps({"url": self.url, "pid": os.getpid()}))
        staging.replace(self.settings.server_file)
        processes = self.settings.processes
        console.print(
            f"Runyard server on {self.url} (data: {self.settings.data_dir}"
            + (f"; {processes} processes" if processes > 1 else "")
            + ")"
        )

    def serve(self) -> None:
        try:
            if self.uvicorn.should_exit:
                return  # stopped between its announcement and now
            if self.settings.processes > 1:
                self.exit_code = ServerProcesses(self).run()
            else:
                self.uvicorn.run(sockets=[self.sock])
        finally:
            for sig, handler in self._handlers.items():
                signal.signal(sig, handler)
            self._unannounce()
            self.runyard.close()

    def _stop_signal(self, sig: int, frame: FrameType | None) -> None:
        """A stop (SIGINT, SIGTERM) while uvicorn's own handlers are not in place: before it
        serves, or after it stopped, when it raises the signal again. Serving ends (or is
        not begun) and server.json is removed, as for a stop while serving."""
        self.uvicorn.should_exit = True

    def _unannounce(self) -> None:
        """Remove server.json, unless another server (sharing the data directory) has
        announced itself there since."""
        try:
            announced = json.loads(self.settings.server_file.read_text())
        except (OSError, ValueError):
            return
        if announced.get("pid") == os.getpid():
            self.settings.server_file.unlink(missing_ok=True)

    def stop(self) -> None:
        for callback in self.on_stop:
            callback()
        self.runyard.changed.close()
        self.uvicorn.should_exit = True

    def local_token(self) -> str:
        return self.settings.admin_token_file.read_text().strip()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def uvicorn_config(ry: Runyard) -> uvicorn.Config:
    settings = ry.settings
    return uvicorn.Config(
        create_app(ry),
        log_level="warning",
        timeout_graceful_shutdown=5,
        # The client's address and scheme from a reverse proxy's X-Forwarded-For and
        # X-Forwarded-Proto, if it connects from one of these addresses (docs/deployment.md).
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


def _check_processes(settings: Settings) -> None:
    if settings.processes < 1:
        raise ConfigError(
            f"--processes must be at least 1, not {settings.processes}", key="RUNYARD_PROCESSES"
        )
    if settings.processes > 1 and not settings.effective_database_url.startswith("postgresql"):
        raise ConfigError(
            f"--processes {settings.processes} needs PostgreSQL (--database-url "
            "postgresql://USER@HOST/DB): SQLite is one database file that one server process "
            "serves; start one process, or move the data to PostgreSQL (docs/deployment.md)",
            key="RUNYARD_PROCESSES",
        )


def _lock_sqlite(settings: Settings) -> TextIO | None:
    """On SQLite, hold the data directory's ``server.lock`` while serving: a second server
    on the same SQLite database is refused (one process serves SQLite: another one's
    waiting claims and live views would not hear of this one's changes). Released by the
    operating system when the process ends, however it ends."""
    if not settings.effective_database_url.startswith("sqlite"):
        return None
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # owner-only: security.md
    handle = open(settings.data_dir / "server.lock", "a+")  # held open while serving
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ConfigError(
            f"another Runyard server ({holder}) is serving the SQLite database of the data "
            f"directory {settings.data_dir}; SQLite is served by one server process: stop "
            "that server, or use another --data-dir (several servers share a PostgreSQL "
            "database: docs/deployment.md)",
            key="RUNYARD_DATA_DIR",
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle


class ServerProcesses:
    """``settings.processes`` server processes forked from this one after it opened the
    database (migrations, built-in task types, the admin token), each with its own
    connections, serving the same socket: the kernel hands each new connection to one of
    them. This process only watches: a stop (SIGINT, SIGTERM) is passed on to every server
    process, and one that ends while the server is not stopping is replaced (unless it
    ended right after it started: then the server stops, the cause is in its output)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.pid = os.getpid()
        self.stopping = False
        self.children: dict[int, float] = {}  # pid -> monotonic time started

    def run(self) -> int:
        self.server.runyard.close()  # no connection or thread crosses a fork
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGTERM, self._stop)
        for _ in range(self.server.settings.processes):
            self._fork()
        exit_code = 0
        while self.children:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            started = self.children.pop(pid, None)
            if started is None or self.stopping:
                continue
            said = _ended(status)
            if time.monotonic() - started < RESTART_AFTER_SECONDS:
                errors.print(
                    f"server process {pid} {said} right after it started; stopping the server"
                )
                exit_code = 1
                self._stop(signal.SIGTERM, None)
            else:
                errors.print(f"server process {pid} {said}; starting another in its place")
                self._fork()
        return exit_code

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        if os.getpid() != self.pid:  # a signal in a new server process before its own handlers
            raise SystemExit(1)
        self.stopping = True
        for pid in self.children:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _fork(self) -> None:
        pid = os.fork()
        if pid == 0:
            self._serve_in_child()  # never returns
        self.children[pid] = time.monotonic()

    def _serve_in_child(self) -> NoReturn:
        code = 1
        try:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            ry = Runyard(self.server.settings)
            served = _Uvicorn(uvicorn_config(ry), ry)
            threading.Thread(
                target=_stop_when_orphaned, args=(served, os.getppid()), daemon=True
            ).start()
            try:
                served.run(sockets=[self.server.sock])
            finally:
                ry.close()
            code = 0 if served.started else 3
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)  # not the parent's code after the fork: its cleanup is its own


# A server process that ends sooner than this after its start is not replaced: the cause
# (the database, the configuration) would end the next one too.
RESTART_AFTER_SECONDS = 10.0


def _ended(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"was killed by signal {signal.Signals(-code).name}"
    return f"ended with status {code}"


def _stop_when_orphaned(served: _Uvicorn, parent: int) -> None:
    """Stop a server process whose parent is gone (killed with SIGKILL): nothing would
    stop it or replace it any more."""
    while os.getppid() == parent:
        time.sleep(1.0)
    served.runyard.changed.close()
    served.should_exit = True


class _Uvicorn(uvicorn.Server):
    """Uvicorn that, asked to stop (Ctrl-C, SIGTERM), first lets the local worker finish or
    give back its jobs (it needs the server for that), then ends long-polling claims and
    stops serving. A second signal makes the local worker give its jobs back at once."""

    def __init__(self, config: uvicorn.Config, runyard: Runyard) -> None:
        super().__init__(config)
        self.runyard = runyard
        self.local_worker: tuple[Worker, threading.Thread] | None = None
        self._draining: threading.Thread | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.local_worker is None or not self.local_worker[1].is_alive():
            self.runyard.changed.close()
            super().handle_exit(sig, frame)
            return
        worker, _ = self.local_worker
        if worker.stopping.is_set():
            console.print("Giving the local worker's running jobs back now")
        elif worker.held:
            console.print(
                f"Stopping: the local worker finishes its running jobs (at most "
                f"{worker.config.grace_seconds:.0f} s); stop again to give them back now"
            )
        worker.stop()
        if self._draining is None:
            self._draining = threading.Thread(
                target=self._exit_after_worker, args=(sig, frame), daemon=True
            )
            self._draining.start()

    def _exit_after_worker(self, sig: int, frame: FrameType | None) -> None:
        assert self.local_worker is not None
        self.local_worker[1].join()
        self.runyard.changed.close()
        super().handle_exit(sig, frame)


def run_server(settings: Settings) -> None:
    server = Server(settings)
    server.announce()
    server.serve()
    if server.exit_code:
        raise SystemExit(server.exit_code)


def run_up(
    settings: Settings, max_jobs: int, after_start: Callable[[Server], None] | None = None
) -> None:
    """Server and one local worker in one process; ``after_start`` runs in a thread once the
    server answers (the demo drives it from there)."""
    server = Server(settings)
    server.announce()
    config = WorkerConfig(
        server=server.url,
        token=server.local_token(),
        name=f"{socket.gethostname()}-local",
        data_dir=settings.data_dir / "worker",
        max_jobs=max_jobs,
    )

    worker = Worker(config)
    server.on_stop.append(worker.stop)

    def work() -> None:
        while not server.uvicorn.started:
            if worker.stopping.wait(0.05):
                return
        console.print(f"Local worker {config.name}: up to {max_jobs} jobs at once")
        if after_start is not None:
            threading.Thread(target=drive, daemon=True, name="after-start").start()
        worker.run()

    def drive() -> None:
        assert after_start is not None
        try:
            after_start(server)
        except Exception as exc:
            errors.print(f"[red]error:[/red] {exc}")
            server.exit_code = 1
            server.stop()

    thread = threading.Thread(target=work, daemon=True, name="local-worker")
    server.uvicorn.local_worker = (worker, thread)
    thread.start()
    try:
        server.serve()
    finally:
        worker.stop()
        thread.join(timeout=30)
    if server.exit_code:
        raise SystemExit(server.exit_code)


def run_worker(config: WorkerConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    worker = Worker(config)
    worker.install_signal_handlers()
    # What is loaded by now lives as long as the worker: out of the garbage collector's
    # way (its full collections walked every module's objects, a tenth of the worker's CPU).
    gc.collect()
    gc.freeze()
    console.print(f"Worker {config.name} on {config.server}: up to {config.max_jobs} jobs")
    count = worker.run()
    console.print(f"Worker {config.name} stopped after {count} jobs")
    if worker.refused is not None:
        errors.print(f"[red]error:[/red] the server refused this worker's token: {worker.refused}")
        raise SystemExit(1)
