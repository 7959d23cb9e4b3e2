"""Commands that start long-running processes: server, worker, up."""

from __future__ import annotations

import gc
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from types import FrameType

import uvicorn

from runyard.cli.context import console, errors
from runyard.errors import ConfigError
from runyard.operations import Runyard
from runyard.server.app import create_app
from runyard.settings import Settings
from runyard.worker.worker import Worker, WorkerConfig


class Server:
    """A Runyard server on a bound socket, announced in the data directory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
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
        config = uvicorn.Config(
            create_app(self.runyard), log_level="warning", timeout_graceful_shutdown=5
        )
        self.uvicorn = _Uvicorn(config, self.runyard)
        self.exit_code = 0
        self.on_stop: list[Callable[[], None]] = []

    def announce(self) -> None:
        if self.admin_token:
            console.print(
                f"Created the admin token (shown once; also stored in "
                f"{self.settings.admin_token_file}):\n  {self.admin_token}"
            )
        # Written whole, then renamed: a client never reads half of it.
        staging = self.settings.server_file.with_suffix(".tmp")
        staging.write_text(json.dumps({"url": self.url, "pid": os.getpid()}))
        staging.replace(self.settings.server_file)
        console.print(f"Runyard server on {self.url} (data: {self.settings.data_dir})")

    def serve(self) -> None:
        try:
            self.uvicorn.run(sockets=[self.sock])
        finally:
            self.settings.server_file.unlink(missing_ok=True)
            self.runyard.close()

    def stop(self) -> None:
        for callback in self.on_stop:
            callback()
        self.runyard.changed.close()
        self.uvicorn.should_exit = True

    def local_token(self) -> str:
        return self.settings.admin_token_file.read_text().strip()


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
