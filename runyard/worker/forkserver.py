"""Fast job start: a warm interpreter that forks one process per job.

Starting a fresh Python for every job costs tens of milliseconds, most of it importing. The
fork server is started once per worker, imports what task scripts use (``runyard.task``, the
compatibility modules, the HTTP client), and then forks a child per job. Each child is still
its own process in its own session (process group) with its own working folder, environment
and log file, exactly like a plain subprocess: isolation is kept, only the start is cheap.

Protocol (one JSON object per line, over two pipes of their own, so that whatever a
preloaded module prints to stdout goes to the worker's output and not into the protocol): the
worker writes ``{"id", "argv", "cwd", "env", "path", "log"}``; the server answers
``{"id", "pid"}`` (or ``{"id", "error"}``) and later ``{"pid", "status"}`` when the child ends
(``status`` is the exit code, or minus the signal number, as ``subprocess`` reports it).
With ``"reuse": ADDRESS``, the child is a reused one that runs jobs sent over that socket.
``{"kill": pid}`` kills a child's process group: the fork server, the child's parent, does it
only while it has not reaped the child (a reaped child's pid, so its group id, may already
belong to a new process, such as the next job's). Each child gets SIGKILL from the kernel if
the fork server dies (``PR_SET_PDEATHSIG``, Linux): the worker gives its job back then, and
must not leave the script running.

The server side (``serve``) runs in its own single-threaded process: forking a process that
has threads is not safe, which is why the worker does not fork itself.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import io
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import IO, Any

from runyard.worker.preload import Learner

# What task scripts import most; loaded once in the fork server, shared by every child.
PRELOAD = ("json", "csv", "logging", "pathlib", "uuid", "httpx", "runyard.task", "runyard.client")
OPTIONAL_PRELOAD = ("numpy",)


PR_SET_PDEATHSIG = 1
_prctl: Any = None  # libc's prctl, on Linux
_learner: Learner | None = None  # an environment's fork server learns what its jobs import

# -- the fork server process ------------------------------------------------------------------


def serve_fds(requests_fd: int, answers_fd: int, compat_dir: str, learn: bool = False) -> None:
    """The fork server's main: the protocol's pipes are the file descriptors it was given."""
    with open(requests_fd, "rb", buffering=0) as requests, open(answers_fd, "wb") as answers:
        serve(requests, answers, compat_dir, learn)


def serve(requests: IO[bytes], answers: IO[bytes], compat_dir: str, learn: bool = False) -> None:
    """Fork a child per request until ``requests`` ends; with ``learn`` (an environment's
    fork server), import what the children imported from the environment (``preload``)."""
    global _learner
    _preload(compat_dir)
    _learner = Learner.for_environment() if learn else None
    if _learner is not None:
        _learner.catch_up()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: set[int] = set()  # forked and not reaped: their groups may be killed
    selector = selectors.DefaultSelector()
    selector.register(requests, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    # Closed in each child: it must not hold the protocol's pipes open.
    inherited = (wake_read, wake_write, requests.fileno(), answers.fileno())
    buffer = b""
    while True:
        for key, _ in selector.select():
            if key.fileobj is requests:
                chunk = os.read(requests.fileno(), 65536)
                if not chunk:
                    return
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    request = json.loads(line)
                    if "kill" in request:
                        if request["kill"] in children:
                            with contextlib.suppress(OSError):
                                os.killpg(request["kill"], signal.SIGKILL)
                        continue
                    if _learner is not None:
                        _learner.catch_up()
                    answer = _start(request, inherited)
                    if "pid" in answer:
                        children.add(answer["pid"])
                    _answer(answers, answer)
            else:
                os.read(wake_read, 4096)
        _reap(answers, children)


def _preload(compat_dir: str) -> None:
    global _prctl
    if sys.platform == "linux":
        with contextlib.suppress(Exception):
            import ctypes

            _prctl = ctypes.CDLL(None, use_errno=True).prctl
    sys.path.insert(0, compat_dir)
    for name in PRELOAD:
        importlib.import_module(name)
    for name in OPTIONAL_PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    for module in sorted(Path(compat_dir).glob("*.py")):
        if module.stem != "__init__":
            with contextlib.suppress(Exception):
                importlib.import_module(module.stem)
    sys.path.remove(compat_dir)
    # Keep the preloaded objects out of the collector's reach, so that children do not
    # copy the pages they live on (copy-on-write) when a collection runs.
    gc.collect()
    gc.freeze()


def _start(request: dict[str, Any], inherited: tuple[int, ...]) -> dict[str, Any]:
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError as exc:
        return {"id": request["id"], "error": f"fork failed: {exc}"}
    if pid == 0:  # the child never returns
        if _prctl is not None:  # killed if the fork server dies (its job is given back)
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:
                os._exit(70)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in inherited:
            with contextlib.suppress(OSError):
                os.close(fd)
        os._exit(_run_child(request))
    return {"id": request["id"], "pid": pid}


def _run_child(request: dict[str, Any]) -> int:
    """Become the job's process: own session, log file as stdout/stderr, the job's folder,
    environment and path; then run the script as ``__main__``."""
    try:
        os.setsid()
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        sys.stdin = open(0, closefd=False)
        sys.stdout = _text_stream(1)
        sys.stderr = _text_stream(2)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[:0] = request["path"]
        sys.argv = list(request["argv"][1:])
    except BaseException:
        traceback.print_exc()
        return 70
    preloaded = list(sys.modules)
    if "reuse" in request:  # a reused child: the jobs come over its socket
        from runyard.worker import reuse

        code = reuse.serve(request["reuse"])
    else:
        code = run_script(sys.argv[0])
    if _learner is not None:
        _learner.note(preloaded)
    # What the interpreter does at exit and os._exit skips: wait for the script's
    # non-daemon threads, run its atexit handlers.
    for step in (threading._shutdown, atexit._run_exitfuncs):  # type: ignore[attr-defined]
        try:
            step()
        except BaseException:
            traceback.print_exc()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    return code


def run_script(path: str) -> int:
    """Run the script as ``__main__``; its exit status (an exception's is 1)."""
    import runpy

    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code & 0xFF
        print(exc.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def _text_stream(fd: int) -> io.TextIOWrapper:
    raw = open(fd, "wb", buffering=0, closefd=False)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", write_through=True)


def _reap(answers: IO[bytes], children: set[int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        _answer(answers, {"pid": pid, "status": code})


def _answer(answers: IO[bytes], message: dict[str, Any]) -> None:
    answers.write(json.dumps(message).encode() + b"\n")
    answers.flush()


# -- the worker's side ------------------------------------------------------------------------


class ForkedProcess:
    """A job process started by the fork server: what the runner needs of ``Popen``."""

    def __init__(self, pid: int, server: ForkServer) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._ended = threading.Event()
        self._server = server

    def _set_status(self, status: int | None) -> None:
        self.returncode = status
        self._ended.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"job process {self.pid}", timeout or 0)
        if self.returncode is None:
            raise RuntimeError("the worker's fork server stopped while the job ran")
        return self.returncode

    def kill_group(self) -> None:
        """Kill the process group, through the fork server (which kills it only while the
        process is not reaped). If the fork server has died, the kernel killed the process
        already."""
        if not self._ended.is_set():
            self._server.kill(self.pid)


class ForkServer:
    """The worker's handle on its fork server process."""

    def __init__(
        self, compat_dir: str, *, python: str = sys.executable, learn: bool = False
    ) -> None:
        """Start the fork server in ``python`` (the worker's, or an environment's: with
        ``learn``, it preloads what its jobs import, see ``runyard.worker.preload``)."""
        request_read, request_write = os.pipe()
        answer_read, answer_write = os.pipe()
        code = "from runyard.worker.forkserver import serve_fds; " + (
            f"serve_fds({request_read}, {answer_write}, {compat_dir!r}, {learn!r})"
        )
        try:
            # Its stdout and stderr are the worker's: a module that prints while it is
            # preloaded shows there, and cannot break the protocol.
            self.process = subprocess.Popen(
                [python, "-c", code],
                stdin=subprocess.DEVNULL,
                pass_fds=(request_read, answer_write),
                start_new_session=True,
            )
        except BaseException:
            for fd in (request_write, answer_read):
                os.close(fd)
            raise
        finally:
            os.close(request_read)
            os.close(answer_write)
        self._requests = open(request_write, "wb")
        self._answers = open(answer_read, "rb")
        self._lock = threading.Lock()
        self._next_id = 0
        self._started: dict[int, tuple[threading.Event, list[Any]]] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._early_exits: dict[int, int] = {}
        self._abandoned: set[int] = set()  # requests start() gave up on: kill if forked
        self._killed: set[int] = set()  # their pids: the exit is nobody's
        self.alive = True
        self._reader = threading.Thread(target=self._read, daemon=True, name="forkserver")
        self._reader.start()

    def start(
        self,
        argv: list[str],
        *,
        cwd: Path,
        env: dict[str, str],
        path: list[str],
        log: Path,
        reuse: str | None = None,
    ) -> ForkedProcess:
        """Fork a job process (with ``reuse``, a reused child that connects to that Unix
        socket); raises RuntimeError if the fork server cannot."""
        done = threading.Event()
        box: list[Any] = []
        with self._lock:
            if not self.alive:
                raise RuntimeError("the fork server has stopped")
            self._next_id += 1
            request_id = self._next_id
            self._started[request_id] = (done, box)
            request = {
                "id": request_id,
                "argv": argv,
                "cwd": str(cwd),
                "env": env,
                "path": path,
                "log": str(log),
                **({"reuse": reuse} if reuse is not None else {}),
            }
            try:
                self._send(request)
            except OSError as exc:  # it died: the reader sees the end of its answers
                self._started.pop(request_id, None)
                raise RuntimeError(f"the fork server has stopped ({exc})") from None
        if not done.wait(30):
            with self._lock:
                if self._started.pop(request_id, None) is not None:
                    self._abandoned.add(request_id)  # the runner starts it another way
                    raise RuntimeError("no answer")
        if not box or "pid" not in box[0]:
            raise RuntimeError(box[0].get("error", "no answer") if box else "no answer")
        return self._children_for(box[0]["pid"])

    def kill(self, pid: int) -> None:
        """Have the fork server kill the process group of its child ``pid`` (if it has not
        reaped it yet)."""
        with self._lock, contextlib.suppress(OSError):
            self._send({"kill": pid})

    def _send(self, message: dict[str, Any]) -> None:
        """Write one request (under ``_lock``)."""
        self._requests.write(json.dumps(message).encode() + b"\n")
        self._requests.flush()

    def _children_for(self, pid: int) -> ForkedProcess:
        with self._lock:
            child = ForkedProcess(pid, self)
            if pid in self._early_exits:
                child._set_status(self._early_exits.pop(pid))
            else:
                self._children[pid] = child
            return child

    def _read(self) -> None:
        for line in self._answers:
            message = json.loads(line)
            with self._lock:
                if "id" in message:
                    if message["id"] in self._abandoned:
                        self._abandoned.discard(message["id"])
                        if "pid" in message:  # forked after all: not a second run of the job
                            self._killed.add(message["pid"])
                            with contextlib.suppress(OSError):
                                self._send({"kill": message["pid"]})
                        continue
                    done, box = self._started.pop(message["id"])
                    box.append(message)
                    done.set()
                    continue
                if message["pid"] in self._killed:
                    self._killed.discard(message["pid"])
                    continue
                child = self._children.pop(message["pid"], None)
                if child is None:
                    self._early_exits[message["pid"]] = message["status"]
                else:
                    child._set_status(message["status"])
        with self._lock:
            self.alive = False
            for done, _box in self._started.values():
                done.set()
            for child in self._children.values():
                child._set_status(None)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._requests.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=5)
        self._answers.close()
