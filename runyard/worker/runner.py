"""Run one job, in three steps: prepare (folder, script, environment), run (a subprocess in
its own process group), record (complete or fail on the server, under the job's lease)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import runyard
from runyard.client import Client, RemoteError
from runyard.packages import read_package_bytes, write_files

LOG_TAIL_CHARS = 64 * 1024
RUNYARD_SOURCE = str(Path(runyard.__file__).resolve().parent.parent)
# The compatibility modules (xfworkerutil, network, xfsortorder, omni), importable by name.
COMPAT_DIR = str(Path(runyard.__file__).resolve().parent / "compat")


@dataclass(kw_only=True)
class Claimed:
    """A job this worker holds, as the server handed it out."""

    serial: int
    lease: str
    token: str
    job: dict[str, Any]
    task_type: dict[str, Any]
    process: subprocess.Popen[bytes] | None = None
    stale: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Claimed:
        return cls(
            serial=data["job"]["serial"],
            lease=data["lease"]["lease"],
            token=data["token"],
            job=data["job"],
            task_type=data["task_type"],
        )


@dataclass(frozen=True, kw_only=True)
class Outcome:
    ok: bool
    outputs: dict[str, Any]
    error: str
    log: str
    workdir: Path


class ScriptCache:
    """Task type scripts fetched from the server, one folder per name and version."""

    def __init__(self, client: Client, root: Path) -> None:
        self.client = client
        self.root = root
        self._lock = threading.Lock()

    def folder(self, task_type: dict[str, Any]) -> Path:
        name, version = str(task_type["name"]), str(task_type["version"])
        target = self.root / name / version
        with self._lock:
            if not target.is_dir():
                data = self.client.get(f"/api/task-types/{name}/{version}/package")
                package = read_package_bytes(data, f"{name} {version} from the server")
                staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=self._ensure_root()))
                write_files(staging, package.files)
                target.parent.mkdir(parents=True, exist_ok=True)
                staging.rename(target)
        return target

    def _ensure_root(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root


def prepare(
    claimed: Claimed, scripts: ScriptCache, jobs_root: Path, server: str
) -> tuple[list[str], dict[str, str], Path]:
    """The command, environment and fresh working folder of a job."""
    folder = scripts.folder(claimed.task_type)
    jobs_root.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"job-{claimed.serial}-", dir=jobs_root))
    (workdir / "job.json").write_text(json.dumps(claimed.job))
    env = dict(os.environ)
    env.update(job_environment(claimed, server, workdir))
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(folder), COMPAT_DIR, RUNYARD_SOURCE, env.get("PYTHONPATH", "")) if p
    )
    script = folder / claimed.task_type["entry_point"]
    return [sys.executable, str(script)], env, workdir


def job_environment(claimed: Claimed, server: str, workdir: Path) -> dict[str, str]:
    """The job's context as environment variables: Runyard's own, and the ones that
    ``xfworkerutil.XFWorkerArguments`` reads."""
    url = urlsplit(server)
    return {
        "RUNYARD_SERVER": server,
        "RUNYARD_JOB_SERIAL": str(claimed.serial),
        "RUNYARD_JOB_TOKEN": claimed.token,
        "RUNYARD_JOB_FILE": str(workdir / "job.json"),
        "RUNYARD_RESULT_FILE": str(workdir / "result.json"),
        "XF_JOB_SERIAL": str(claimed.serial),
        "XF_SERVER_HOST": url.hostname or "127.0.0.1",
        "XF_SERVER_PORT": str(url.port or (443 if url.scheme == "https" else 80)),
        "XF_SERVER_SCHEME": url.scheme or "http",
        "XF_SERVER_AUTH": claimed.token,
        "PYTHONUNBUFFERED": "1",
    }


def run(claimed: Claimed, command: list[str], env: dict[str, str], workdir: Path) -> Outcome:
    """Run the script; its output becomes the job log."""
    log_path = workdir / "job.log"
    timeout = claimed.task_type.get("timeout_seconds")
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        claimed.process = process
        try:
            code = process.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            kill_group(process)
            code = process.wait()
            timed_out = True
    log = log_path.read_bytes()[-LOG_TAIL_CHARS:].decode("utf-8", errors="replace")
    result = _read_result(workdir / "result.json")
    if timed_out:
        error = f"timed out after {timeout} s (the task type's timeout); the script was killed"
    elif code < 0:
        error = f"killed by signal {signal.Signals(-code).name}"
    elif code != 0:
        error = result.get("error") or f"the script exited with status {code}"
    else:
        return Outcome(
            ok=True, outputs=result.get("outputs", {}), error="", log=log, workdir=workdir
        )
    tail = "\n".join(log.strip().splitlines()[-20:])
    message = f"{error} (working folder kept: {workdir})" + (f"\nlog tail:\n{tail}" if tail else "")
    return Outcome(ok=False, outputs={}, error=message, log=log, workdir=workdir)


def record(client: Client, claimed: Claimed, outcome: Outcome) -> bool:
    """Report the outcome under the lease; False if the lease was stale (result dropped)."""
    try:
        if outcome.ok:
            answer = client.post(
                f"/api/jobs/{claimed.serial}/complete",
                {"lease": claimed.lease, "outputs": outcome.outputs, "log": outcome.log},
            )
            if answer.get("state") == "Done":  # kept when the outputs failed the job
                shutil.rmtree(outcome.workdir, ignore_errors=True)
        else:
            client.post(
                f"/api/jobs/{claimed.serial}/fail",
                {"lease": claimed.lease, "error": outcome.error, "log": outcome.log},
            )
    except RemoteError as exc:
        if exc.is_stale_lease:
            return False
        raise
    return True


def kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _read_result(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError:
        return {"error": "the script wrote an unreadable result file"}
    return data if isinstance(data, dict) else {}
