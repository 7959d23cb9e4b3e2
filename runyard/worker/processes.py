"""A job's process: started in its own session (process group) as a Slurm job, a reused
child, a child of the warm fork server, or a plain subprocess (``start``); killed as a whole
group (``kill_group``). Each kind offers what the runner needs of ``Popen``: ``pid``,
``returncode``, ``wait(timeout)`` and ``kill_group``."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import threading
from typing import Any

from runyard.worker.forkserver import ForkedProcess, ForkServer
from runyard.worker.prepare import Prepared
from runyard.worker.reuse import ReusedJob, ReusePool
from runyard.worker.slurm import Slurm, SlurmJob
from runyard.worker.slurm_commands import SlurmUnavailable

log = logging.getLogger("runyard.worker")


class PlainProcess:
    """A job process started as a plain subprocess, waited for without being reaped: it is
    reaped under a lock, and its group is killed under the same lock only while it is not
    reaped yet. An unreaped process keeps its pid, so its group id cannot belong to a new
    process (the next job's, say) when ``kill_group`` signals it."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.pid = popen.pid
        self._lock = threading.Lock()
        self._pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):  # Linux 5.3 and later
            self._pidfd = os.pidfd_open(popen.pid)

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self._pidfd is None:  # no pidfd: the plain wait (it reaps on its own)
            return self.popen.wait(timeout)
        if self.popen.returncode is None:
            readable, _, _ = select.select([self._pidfd], [], [], timeout)
            if not readable:  # readable once it has ended (not reaped yet)
                raise subprocess.TimeoutExpired(self.popen.args, timeout or 0)
        with self._lock:
            code = self.popen.wait()
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
        return code

    def kill_group(self) -> None:
        with self._lock:
            if self.popen.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pid, signal.SIGKILL)


JobProcess = PlainProcess | ForkedProcess | ReusedJob | SlurmJob


class GiveBack(Exception):
    """The job could not run for a reason not its own (its fork server died under it, its
    server stayed away longer than its calls' retry time): its script is stopped, and the
    job goes back to the server (the attempt not counted) for this or another worker to run
    again."""


def start(
    prepared: Prepared,
    forkserver: ForkServer | None,
    children: ReusePool | None = None,
    slurm: Slurm | None = None,
) -> JobProcess:
    """Start the job's process in its own session: as a Slurm job (on a worker with
    ``--executor slurm``), in a reused child of its task type (if it asks for one), forked
    from the warm fork server when possible, else a plain subprocess."""
    if slurm is not None:
        try:
            return slurm.submit(prepared, prepared.serial, prepared.timeout_seconds)
        except SlurmUnavailable as exc:  # not the job's fault: another try may work
            raise GiveBack(str(exc)) from None
    if forkserver is not None and prepared.forkable and forkserver.alive:
        if children is not None and prepared.jobs_per_process > 1:
            try:
                return children.start(
                    forkserver, prepared.task_type, prepared.jobs_per_process, _request(prepared)
                )
            except RuntimeError as exc:
                log.warning("%s; starting a process for the job alone", exc)
        try:
            return forkserver.start(
                prepared.command,
                cwd=prepared.workdir,
                env=prepared.env,
                path=prepared.path,
                log=prepared.log,
            )
        except RuntimeError as exc:
            log.warning("fork server: %s; starting a plain subprocess", exc)
    with open(prepared.log, "ab") as log_file:
        popen = subprocess.Popen(
            prepared.command,
            cwd=prepared.workdir,
            env=prepared.env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return PlainProcess(popen)


def _request(prepared: Prepared) -> dict[str, Any]:
    """A job for a reused child (the fork server's request)."""
    return {
        "argv": prepared.command,
        "cwd": str(prepared.workdir),
        "env": prepared.env,
        "path": prepared.path,
        "log": str(prepared.log),
    }


def kill_group(process: JobProcess) -> None:
    """Kill the job's whole process group, if its process is not reaped yet (a reaped
    process's pid may be reused)."""
    process.kill_group()


def group_left(process: JobProcess) -> bool:
    """Whether a process of the ended job's process group is still there (one the script
    started and left behind, which might still write into the job's folder). A reused
    child's group is the child's own: its scripts must not leave processes behind."""
    if isinstance(process, ReusedJob | SlurmJob):  # a Slurm job's processes end with it
        return False
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
