"""The fork server process: a warm interpreter that preloads what task scripts import, then
forks one child per job and reports each child's end (``serve``; the protocol is described
in ``forkserver``, the worker's handle on this process).

It runs in its own single-threaded process: forking a process that has threads is not safe,
which is why the worker does not fork itself. A child becomes the job's process (its own
session, log file, folder, environment and path; the script run as ``__main__``), or a reused
child that runs jobs sent over a socket (``reuse``).
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
