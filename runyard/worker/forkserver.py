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

This module is the worker's side: ``ForkServer``, its handle on the fork server process, and
``ForkedProcess``, a job process that the fork server started. The server side
(``forking.serve``) runs in its own single-threaded process: forking a process that has
threads is not safe, which is why the worker does not fork itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any


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
        code = "from runyard.worker.forking import serve_fds; " + (
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
