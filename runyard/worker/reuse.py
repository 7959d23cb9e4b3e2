"""Reused processes: the jobs of a task type whose metadata asks for it (``jobs_per_process``
N > 1) run one after another in one child process, at most N each, instead of in a new
process per job (as Celery's prefork pool does with ``max_tasks_per_child``). Starting and
ending a process costs more CPU than a light script; a reused child pays it once per N jobs.

A reused child is forked by the fork server like a job process (its own session, stdin from
``/dev/null``, killed by the kernel if the fork server dies), then connects to a Unix socket
that the worker listens on for it, in a private folder. Protocol (one JSON object per line,
off stdout and stderr): the worker sends a job as the fork server's request
``{"argv", "cwd", "env", "path", "log"}``; the child answers ``{"status", "retire"}`` once
the script has ended (``status`` as the fork server reports it).

Per job the child gives the script what a new process would: its working folder as the
current directory, ``os.environ`` the job's environment, ``sys.argv``, fds 1 and 2 (and
so ``sys.stdout``, ``sys.stderr``) on the job's log, the script's folders first on
``sys.path``, the script run as ``__main__``, and ``runyard.task`` with no job cached. The
imported modules and their globals are shared by the jobs of a child.

A child serves no more jobs (it exits, or the worker closes its socket) after a job that
failed (its state may be broken), that left threads or exit handlers behind (they are run
first, as a process exit would), that was killed (timeout, abort, release, worker stop: its
whole process group is killed), and after N jobs. A worker keeps at most as many idle
children as it has slots, per task type name and version.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

from runyard.worker.forking import run_script
from runyard.worker.forkserver import ForkedProcess, ForkServer

CONNECT_SECONDS = 30.0  # how long a new child may take to connect
SLICE = 1.0  # while waiting for a job: how often to look whether the child has died

# -- the reused child -------------------------------------------------------------------------


def serve(address: str) -> int:
    """A reused child's main, called by the fork server's child once it is set up as a job
    process: run the jobs the worker sends until it closes the connection or the child
    retires."""
    streams = (sys.stdin, sys.stdout, sys.stderr)
    base_path = list(sys.path)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)  # between jobs: nowhere
    os.dup2(null, 2)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(address)
        with conn.makefile("rb") as requests:
            for line in requests:
                code, retire = _serve_one(json.loads(line), base_path)
                sys.stdin, sys.stdout, sys.stderr = streams
                os.dup2(null, 1)
                os.dup2(null, 2)
                os.chdir("/")
                conn.sendall(json.dumps({"status": code, "retire": retire}).encode() + b"\n")
                if retire:
                    break
    return 0


def _serve_one(request: dict[str, Any], base_path: list[str]) -> tuple[int, bool]:
    """Run one job in this process; its exit status, and whether the child must retire."""
    try:
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.chdir(request["cwd"])
        _set_environ(request["env"])
        sys.path[:] = [*request["path"], *base_path]
        sys.argv = list(request["argv"][1:])
        _forget_job()
    except BaseException:
        traceback.print_exc()
        return 70, True
    threads, handlers = threading.active_count(), atexit._ncallbacks()
    code = run_script(sys.argv[0])
    _forget_job()
    left_behind = threading.active_count() > threads or atexit._ncallbacks() > handlers
    if left_behind:  # what a process exit does: wait for the threads, run the handlers
        for step in (threading._shutdown, atexit._run_exitfuncs):  # type: ignore[attr-defined]
            try:
                step()
            except BaseException:
                traceback.print_exc()
    _flush(sys.stdout, sys.stderr)
    return code, code != 0 or left_behind


def _set_environ(env: dict[str, str]) -> None:
    """``os.environ = env``, changing only what differs from the last job's (most of the
    worker's environment is the same for every job; clearing it all costs more)."""
    for name in [name for name in os.environ if name not in env]:
        del os.environ[name]
    for name, value in env.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def _forget_job() -> None:
    """``runyard.task`` caches the current job (and its client) per process: not across
    jobs."""
    task = sys.modules.get("runyard.task")
    current: list[Any] = getattr(task, "_current", [])
    for job in current:
        client = vars(job).get("_shared_client")
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
    current.clear()


def _flush(*streams: TextIO) -> None:
    for stream in streams:
        with contextlib.suppress(Exception):
            stream.flush()


# -- the worker's side ------------------------------------------------------------------------


class ReusedChild:
    """The worker's end of one reused child: its process and its connection."""

    def __init__(
        self, key: str, limit: int, process: ForkedProcess, server: ForkServer, conn: socket.socket
    ) -> None:
        self.key = key  # the task type's name and version: it serves no other
        self.limit = limit  # jobs_per_process
        self.process = process
        self.server = server
        self.conn = conn
        self.served = 0
        self.retiring = False  # the child said it exits after this job
        self._buffer = b""

    def usable(self, server: ForkServer) -> bool:
        """Alive, from this fork server, and not gone meanwhile (an idle child's connection
        has nothing to read unless it ended)."""
        if self.server is not server or not server.alive or self.process.poll() is not None:
            return False
        readable, _, _ = select.select([self.conn], [], [], 0)
        return not readable

    def send(self, request: dict[str, Any]) -> None:
        self.conn.sendall(json.dumps(request).encode() + b"\n")

    def answer(self, timeout: float) -> dict[str, Any] | None:
        """The child's answer, or None if none came within ``timeout`` seconds; EOFError if
        the connection ended (the child died or exited)."""
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([self.conn], [], [], timeout)
            if not ready:
                return None
            try:
                chunk = self.conn.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                raise EOFError
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        """Retire the child: it exits when its connection ends (a killed one is gone)."""
        with contextlib.suppress(OSError):
            self.conn.close()


class ReusedJob:
    """One job in a reused child: what the runner needs of a job process (``wait``,
    ``kill_group``), and ``end`` to hand the child back for the next job, or retire it."""

    def __init__(self, child: ReusedChild, pool: ReusePool) -> None:
        self.child = child
        self.pool = pool
        self.pid = child.process.pid
        self.returncode: int | None = None
        self.killed = False

    def wait(self, timeout: float | None = None) -> int:
        """The job's exit status; raises ``subprocess.TimeoutExpired``, or RuntimeError if
        the fork server died (the child with it)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = SLICE if deadline is None else min(SLICE, deadline - time.monotonic())
            if left <= 0:
                raise subprocess.TimeoutExpired(f"job in process {self.pid}", timeout or 0)
            try:
                answer, gone = self.child.answer(left), False
            except EOFError:  # killed, or it died (os._exit, say)
                answer, gone = None, True
            if answer is not None:
                self.child.served += 1
                self.child.retiring = bool(answer.get("retire"))
                self.returncode = int(answer["status"])
            elif gone or self.child.process.poll() is not None or not self.child.server.alive:
                # Gone (though a process the script started may hold its socket open).
                self.child.retiring = True
                self.returncode = self.child.process.wait()
        return self.returncode

    def kill_group(self) -> None:
        """Kill the child's whole process group (the job's script and what it started)."""
        self.killed = True
        self.child.process.kill_group()

    def end(self, *, keep: bool) -> None:
        """The job is over: the child goes back to the pool if it may serve another job."""
        child = self.child
        if (
            keep
            and self.returncode == 0
            and not self.killed
            and not child.retiring
            and child.served < child.limit
        ):
            self.pool.put_back(child)
        else:
            child.close()


class ReusePool:
    """A worker's reused children: the idle ones, by task type, at most ``max_idle`` (the
    least recently used goes first)."""

    def __init__(self, max_idle: int) -> None:
        self.max_idle = max_idle
        self._idle: list[ReusedChild] = []  # least recently used first
        self._lock = threading.Lock()
        self._folder: str | None = None  # private: where children connect
        self._started = 0

    def start(self, server: ForkServer, key: str, limit: int, request: dict[str, Any]) -> ReusedJob:
        """Send a job to an idle child of task type ``key``, or to a new one; RuntimeError
        if no child can take it."""
        child = self._idle_child(server, key)
        try:
            if child is None:
                child = self._new_child(server, key, limit)
            child.send(request)
        except OSError as exc:
            if child is not None:
                child.close()
            raise RuntimeError(f"no reused process: {exc}") from None
        return ReusedJob(child, self)

    def put_back(self, child: ReusedChild) -> None:
        with self._lock:
            self._idle.append(child)
            surplus = self._idle[: max(0, len(self._idle) - self.max_idle)]
            del self._idle[: len(surplus)]
        for old in surplus:
            old.close()

    def close(self) -> None:
        """Retire the idle children (the worker stops)."""
        with self._lock:
            idle, self._idle = self._idle, []
            folder, self._folder = self._folder, None
        for child in idle:
            child.close()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def _idle_child(self, server: ForkServer, key: str) -> ReusedChild | None:
        """The most recently used idle child of task type ``key`` (dead ones are dropped)."""
        with self._lock:
            usable = [c for c in self._idle if c.usable(server)]
            dead = [c for c in self._idle if c not in usable]
            found = next((c for c in reversed(usable) if c.key == key), None)
            self._idle = [c for c in usable if c is not found]
        for child in dead:
            child.close()
        return found

    def _new_child(self, server: ForkServer, key: str, limit: int) -> ReusedChild:
        with self._lock:
            if self._folder is None:
                self._folder = tempfile.mkdtemp(prefix="runyard-reuse-")  # mode 0700
            self._started += 1
            address = os.path.join(self._folder, f"{self._started}.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(address)
            try:
                listener.listen(1)
                listener.settimeout(SLICE)
                process = server.start(
                    [],
                    cwd=Path("/"),
                    env=dict(os.environ),
                    path=[],
                    log=Path(os.devnull),
                    reuse=address,
                )
                conn = _accept(listener, process, server)
            finally:
                os.unlink(address)
        conn.setblocking(True)
        return ReusedChild(key, limit, process, server, conn)


def _accept(listener: socket.socket, process: ForkedProcess, server: ForkServer) -> socket.socket:
    """The new child's connection (RuntimeError if it died or did not connect in time)."""
    deadline = time.monotonic() + CONNECT_SECONDS
    while True:
        try:
            conn, _ = listener.accept()
            return conn
        except TimeoutError:
            pass
        if process.poll() is not None or not server.alive:
            raise RuntimeError("the reused process ended before it connected")
        if time.monotonic() > deadline:
            process.kill_group()
            raise RuntimeError(f"the reused process did not connect within {CONNECT_SECONDS} s")
