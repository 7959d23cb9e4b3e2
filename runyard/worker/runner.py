"""Run one job, in three steps: prepare (folder, script, environment), run (a process in its
own process group, forked from the warm fork server or a plain subprocess; or, for a task
type with ``jobs_per_process`` > 1, a reused child of its own, see ``reuse``; or, on a worker
with ``--executor slurm``, a Slurm batch job, see ``slurm``), record (complete or fail on the
server, under the job's lease)."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import runyard
from runyard.client import Client
from runyard.packages import read_package_bytes, write_files
from runyard.worker.folders import WorkingFolders
from runyard.worker.forkserver import ForkedProcess, ForkServer
from runyard.worker.joblog import LogPump as LogPump  # re-exported: the tests import it here
from runyard.worker.reuse import ReusedJob, ReusePool
from runyard.worker.slurm import Slurm, SlurmJob, SlurmRefused, SlurmUnavailable

log = logging.getLogger("runyard.worker")

RUNYARD_SOURCE = str(Path(runyard.__file__).resolve().parent.parent)
# The compatibility modules (xfworkerutil, network, xfsortorder, omni), importable by name.
COMPAT_DIR = str(Path(runyard.__file__).resolve().parent / "compat")


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


@dataclass(kw_only=True)
class Claimed:
    """A job this worker holds, as the server handed it out."""

    serial: int
    lease: str
    token: str
    job: dict[str, Any]
    task_type: dict[str, Any]
    environment: dict[str, Any] | None = None  # its dependency packages' (None: the worker's)
    claimed_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None  # when a slot took it (monotonic)
    process: JobProcess | None = None
    workdir: Path | None = None
    log: LogPump | None = None
    stale: threading.Event = field(default_factory=threading.Event)  # the lease was lost
    released: threading.Event = field(default_factory=threading.Event)  # given back
    reporting: threading.Lock = field(default_factory=threading.Lock)
    finished: bool = False  # the outcome is being (or was) reported
    clean: bool = False  # ended well, no process of it left: its folder may serve another job

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Claimed:
        return cls(
            serial=data["job"]["serial"],
            lease=data["lease"]["lease"],
            token=data["token"],
            job=data["job"],
            task_type=data["task_type"],
            environment=data.get("environment"),
        )


class GiveBack(Exception):
    """The job could not run for a reason not its own (its fork server died under it, its
    server stayed away longer than its calls' retry time): its script is stopped, and the
    job goes back to the server (the attempt not counted) for this or another worker to run
    again."""


@dataclass(frozen=True, kw_only=True)
class Outcome:
    ok: bool
    outputs: dict[str, Any]
    error: str
    workdir: Path | None
    clean: bool = False  # ok, and no process of the job is left (its folder may be reused)


class ScriptCache:
    """Task type scripts fetched from the server, one folder per name and version."""

    def __init__(self, client: Client, root: Path) -> None:
        self.client = client
        self.root = root
        self._lock = threading.Lock()
        self._known: dict[tuple[str, str], Path] = {}  # fetched (or found) by this worker

    def folder(self, task_type: dict[str, Any]) -> Path:
        name, version = str(task_type["name"]), str(task_type["version"])
        known = self._known.get((name, version))
        if known is not None:
            return known
        target = self.root / name / version
        with self._lock:
            if not target.is_dir():
                data = self.client.get(f"/api/task-types/{name}/{version}/package")
                package = read_package_bytes(data, f"{name} {version} from the server")
                staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=self._ensure_root()))
                try:
                    write_files(staging, package.files)  # streamed, entry by entry
                except BaseException:
                    shutil.rmtree(staging, ignore_errors=True)
                    raise
                target.parent.mkdir(parents=True, exist_ok=True)
                staging.rename(target)
            self._known[name, version] = target
        return target

    def _ensure_root(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root


@dataclass(frozen=True, kw_only=True)
class Prepared:
    """Everything needed to start a job's process."""

    command: list[str]
    env: dict[str, str]
    path: list[str]  # folders the script imports from (its own, the compatibility modules)
    workdir: Path
    log: Path
    forkable: bool  # may start from a fork server (a Python script)
    python: str = sys.executable  # the worker's, or the job's environment's
    task_type: str = ""  # name and version: a reused child serves jobs of one task type only
    jobs_per_process: int = 1  # > 1: run in a reused child (forkable jobs only)
    serial: int = 0  # the job's (its Slurm job's name)
    timeout_seconds: float | None = None  # the task type's (its Slurm job's time limit)
    resources: dict[str, Any] = field(default_factory=dict)  # the task type's (sbatch options)


def prepare(
    claimed: Claimed,
    scripts: ScriptCache,
    folders: WorkingFolders,
    server: str,
    base_env: dict[str, str],
    python: str = sys.executable,
) -> Prepared:
    """The command, environment and fresh working folder of a job; its environment is
    ``base_env`` (the worker's) with the job's variables; ``python`` runs it (that of the
    environment of its dependency packages, if it has some)."""
    folder = scripts.folder(claimed.task_type)
    workdir = folders.new(claimed.serial, claimed.job)
    path = [str(folder), COMPAT_DIR, RUNYARD_SOURCE]
    env = base_env | job_environment(claimed, server, workdir)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (*path, env.get("PYTHONPATH", "")) if p)
    entry_point = str(claimed.task_type["entry_point"])
    return Prepared(
        command=[python, str(folder / entry_point)],
        env=env,
        path=path,
        workdir=workdir,
        log=workdir / "job.log",
        forkable=entry_point.endswith(".py"),
        python=python,
        task_type=f"{claimed.task_type['name']} {claimed.task_type['version']}",
        jobs_per_process=int(claimed.task_type.get("jobs_per_process") or 1),
        serial=claimed.serial,
        timeout_seconds=claimed.task_type.get("timeout_seconds"),
        resources=claimed.task_type.get("resources") or {},
    )


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


def job_environment(claimed: Claimed, server: str, workdir: Path) -> dict[str, str]:
    """The job's context as environment variables: Runyard's own, and the ones that
    ``xfworkerutil.XFWorkerArguments`` reads."""
    folder = str(workdir)
    return {
        "RUNYARD_SERVER": server,
        "RUNYARD_JOB_SERIAL": str(claimed.serial),
        "RUNYARD_JOB_TOKEN": claimed.token,
        "RUNYARD_JOB_FILE": os.path.join(folder, "job.json"),
        "RUNYARD_RESULT_FILE": os.path.join(folder, "result.json"),
        "XF_JOB_SERIAL": str(claimed.serial),
        **_server_variables(server),
        "XF_SERVER_AUTH": claimed.token,
        "PYTHONUNBUFFERED": "1",
    }


@functools.cache
def _server_variables(server: str) -> dict[str, str]:
    url = urlsplit(server)
    return {
        "XF_SERVER_HOST": url.hostname or "127.0.0.1",
        "XF_SERVER_PORT": str(url.port or (443 if url.scheme == "https" else 80)),
        "XF_SERVER_SCHEME": url.scheme or "http",
    }


def run(
    claimed: Claimed,
    prepared: Prepared,
    forkserver: ForkServer | None,
    children: ReusePool | None = None,
    slurm: Slurm | None = None,
) -> Outcome:
    """Run the script to its end (or its timeout); what it printed is the job log. Raises
    ``GiveBack`` if the fork server dies under the job (or its Slurm node fails), or if the
    script failed after its client gave up on an absent server (``give_back`` in its result
    file: ``runyard.task.job_client``)."""
    timeout = claimed.task_type.get("timeout_seconds")
    if claimed.released.is_set() or claimed.stale.is_set():  # while it was being prepared
        return Outcome(ok=False, outputs={}, error="not started", workdir=prepared.workdir)
    try:
        process = start(prepared, forkserver, children, slurm)
    except SlurmRefused as exc:  # sbatch said no (a bad partition, a limit): its words
        return _failed(prepared, str(exc))
    with claimed.reporting:  # a release or lost lease that came first kills it now
        claimed.process = process
        if claimed.released.is_set() or claimed.stale.is_set():
            kill_group(process)
    try:
        code = process.wait(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        kill_group(process)
        code = process.wait()
        timed_out = True
    except RuntimeError as exc:  # the fork server (Slurm node) died under the job: not its fault
        kill_group(process)
        raise GiveBack(str(exc)) from None
    finally:
        _done_with(claimed, process)
    result = _read_result(prepared.workdir / "result.json")
    if timed_out:
        error = f"timed out after {timeout} s (the task type's timeout); the script was killed"
    elif isinstance(process, SlurmJob) and process.failure:  # Slurm's reason, not a status
        error = process.failure
    elif code < 0:
        error = f"killed by signal {signal.Signals(-code).name}"
    elif code != 0 and result.get("give_back"):  # its server stayed away: not its fault
        raise GiveBack(f"the script could not reach the server: {result['give_back']}")
    elif code != 0 and result.get("error"):  # the script's own message (fail, error): as it is
        return Outcome(ok=False, outputs={}, error=result["error"], workdir=prepared.workdir)
    elif code != 0:
        error = f"the script exited with status {code}"
    else:
        outputs = result.get("outputs", {})
        clean = not _group_left(process)
        return Outcome(ok=True, outputs=outputs, error="", workdir=prepared.workdir, clean=clean)
    return _failed(prepared, error)


def _group_left(process: JobProcess) -> bool:
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


def _done_with(claimed: Claimed, process: JobProcess) -> None:
    """The job's process has ended (or, reused, serves no more this job): from now on a
    release or a lost lease kills nothing. A reused child serves the next job only if
    nothing killed it or spoilt the job meanwhile."""
    if isinstance(process, ReusedJob):
        with claimed.reporting:
            claimed.process = None
            spoilt = claimed.released.is_set() or claimed.stale.is_set()
        process.end(keep=not spoilt)


def _failed(prepared: Prepared, error: str) -> Outcome:
    """A script that died: why, where its folder is kept, and the end of its log."""
    tail = _log_tail(prepared.log, 20)
    message = f"{error} (working folder kept: {prepared.workdir})" + (
        f"\nlog tail:\n{tail}" if tail else ""
    )
    return Outcome(ok=False, outputs={}, error=message, workdir=prepared.workdir)


def _log_tail(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", errors="replace").strip().splitlines()[-lines:])


def result(claimed: Claimed, outcome: Outcome) -> dict[str, Any] | None:
    """The report of a finished job; from now on heartbeats read no more of its log, and
    the reporter adds the rest (``log``) once the heartbeats under way are answered."""
    with claimed.reporting:
        if claimed.released.is_set():
            return None  # given back meanwhile: another worker runs it
        claimed.finished = True
    item: dict[str, Any] = {"serial": claimed.serial, "lease": claimed.lease, "log": ""}
    if outcome.ok:
        return item | {"ok": True, "outputs": outcome.outputs}
    return item | {"ok": False, "error": outcome.error, "workdir": str(outcome.workdir or "")}


def kill_group(process: JobProcess) -> None:
    """Kill the job's whole process group, if its process is not reaped yet (a reaped
    process's pid may be reused)."""
    process.kill_group()


def _read_result(path: Path) -> dict[str, Any]:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return {}
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        data = json.loads(b"".join(chunks))
    except ValueError:
        return {"error": "the script wrote an unreadable result file"}
    finally:
        os.close(fd)
    return data if isinstance(data, dict) else {}
