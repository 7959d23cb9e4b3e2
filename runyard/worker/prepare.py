"""Prepare a claimed job to run: its task type's script (fetched from the server once per
name and version, ``ScriptCache``), a fresh working folder, and the command and environment
of its process (``prepare``, giving ``Prepared``)."""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import runyard
from runyard.client import Client
from runyard.packages import read_package_bytes, write_files
from runyard.worker.claimed import Claimed
from runyard.worker.folders import WorkingFolders

RUNYARD_SOURCE = str(Path(runyard.__file__).resolve().parent.parent)
# The compatibility modules (xfworkerutil, network, xfsortorder, omni), importable by name.
COMPAT_DIR = str(Path(runyard.__file__).resolve().parent / "compat")


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
