"""The environments a worker makes for dependency packages: ``Environments``.

A job whose task type needs dependency packages comes with its environment's spec (``{"key",
"packages": [{"name", "version", "install"}]}``, see ``runyard.operations.environments``). The
worker makes that environment once, in ``DATA_DIR/environments/KEY``, and every job of every
task type with the same packages runs in it:

- a virtual environment of the worker's Python, made with ``uv`` (``uv venv``; Python's
  ``venv`` with pip when uv is not there), layered on the worker's own packages: a
  ``.pth`` file adds the worker's site-packages *after* the environment's, so Runyard and
  its client are there, and what the packages install comes first;
- each package's files fetched from the server, and its ``install`` command run in that
  folder as a shell command, ``%xfpip%`` standing for the environment's pip (``uv pip``)
  and ``%xfpython%`` for its Python; the output goes to the environment's install log;
- when every command succeeded, a ``.runyard-ready`` file marks it Ready. A failed install
  deletes the environment whole (nothing stays half-installed) and keeps its log beside it.

The server hears of each step (Installing, Ready, Failed with the log): a worker claims no
more jobs of an environment that failed on it, and the job that asked for it goes back to the
queue. A file lock per environment keeps two makers (the worker and ``runyard worker
install``) from making it at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from runyard.client import Client, Unreachable
from runyard.errors import RunyardError
from runyard.packages import read_package_bytes, write_files

log = logging.getLogger("runyard.worker")

READY = ".runyard-ready"
LAYER = "_runyard_worker.pth"  # in the environment's site-packages
INSTALL_TIMEOUT = 3600.0  # seconds, for each install command
LOG_LIMIT = 200_000  # characters of the install log sent to the server (its end)
PRIVATE = frozenset({"RUNYARD_TOKEN"})  # the worker's own: never passed to what it runs


class EnvironmentFailed(RunyardError):
    """An environment could not be made: its install log says why."""


class Environments:
    """The environments of one worker, under ``root`` (``DATA_DIR/environments``)."""

    def __init__(self, root: Path, client: Client, worker: str) -> None:
        self.root = root
        self.client = client
        self.worker = worker
        self._lock = threading.Lock()
        self._making: dict[str, threading.Lock] = {}  # per key: one maker in this process
        self._ready: dict[str, str] = {}  # key -> the environment's python

    def python(self, spec: dict[str, Any]) -> str:
        """The Python of the environment ``spec`` asks for, made first if need be; raises
        ``EnvironmentFailed``."""
        key = _checked_key(spec)
        ready = self._ready.get(key)
        if ready is not None:
            return ready
        folder = self.root / key
        with self._lock:
            making = self._making.setdefault(key, threading.Lock())
        with making, _file_lock(self.root, key):
            if not (folder / READY).is_file():
                self._make(folder, spec)
            python = str(_python(folder))
            self._ready[key] = python
        return python

    def make(self, spec: dict[str, Any]) -> str:
        """``python``, for an admin's request: the server hears it is Ready also when it was
        made before (by a job, or ``runyard worker install``)."""
        key = _checked_key(spec)
        made_before = (self.root / key / READY).is_file()
        python = self.python(spec)
        if made_before:
            log_path = self.root / f"{key}.log"
            text = _tail(log_path) if log_path.is_file() else ""
            self._tell(key, list(spec["packages"]), "Ready", text)
        return python

    def _make(self, folder: Path, spec: dict[str, Any]) -> None:
        key, packages = spec["key"], list(spec["packages"])
        names = ", ".join(f"{p['name']} {p['version']}" for p in packages)
        log.info("making environment %s (%s)", key, names)
        self._tell(key, packages, "Installing", "")
        log_path = self.root / f"{key}.log"
        shutil.rmtree(folder, ignore_errors=True)  # what an interrupted attempt left
        started = time.monotonic()
        try:
            with open(log_path, "w", encoding="utf-8") as out:
                out.write(f"environment {key}: {names}\n")
                out.flush()
                self._build(folder, packages, out)
                out.write(f"ready in {time.monotonic() - started:.1f} s\n")
        except Unreachable:
            # The server is away (fetching a package's files): not the environment's fault.
            # Nothing stays; the job goes back and the next one tries again.
            shutil.rmtree(folder, ignore_errors=True)
            raise
        except (OSError, EnvironmentFailed, RunyardError, subprocess.SubprocessError) as exc:
            shutil.rmtree(folder, ignore_errors=True)
            with open(log_path, "a", encoding="utf-8") as out:
                out.write(f"FAILED: {exc}\n")
            text = _tail(log_path)
            self._tell(key, packages, "Failed", text)
            raise EnvironmentFailed(
                f"the environment for {names} could not be made: {exc}", key=key
            ) from None
        (folder / READY).write_text(json.dumps(spec))
        self._tell(key, packages, "Ready", _tail(log_path))

    def _build(self, folder: Path, packages: list[dict[str, Any]], out: Any) -> None:
        uv = _uv()
        if uv is not None:
            _run([uv, "venv", "--quiet", "--python", sys.executable, str(folder)], out)
        else:
            _run([sys.executable, "-m", "venv", str(folder)], out)
        python = _python(folder)
        purelib = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        _layer(Path(purelib))
        env = install_environment(folder)
        pip = f"{shlex.quote(uv)} pip" if uv is not None else f"{shlex.quote(str(python))} -m pip"
        for package in packages:
            files = folder / ".packages" / f"{package['name']}-{package['version']}"
            self._fetch(package, files)
            command = package.get("install")
            if not command:
                continue
            command = command.replace("%xfpip%", pip).replace(
                "%xfpython%", shlex.quote(str(python))
            )
            out.write(f"\n$ {command}    (in {package['name']} {package['version']})\n")
            out.flush()
            code = _run_command(command, files, env, out)
            if code != 0:
                raise EnvironmentFailed(
                    f"the install command of {package['name']} {package['version']} "
                    f"exited with status {code}"
                )

    def _fetch(self, package: dict[str, Any], target: Path) -> None:
        name, version = package["name"], package["version"]
        data = self.client.get(f"/api/dependency-packages/{name}/{version}/package")
        files = read_package_bytes(data, f"dependency package {name} {version} from the server")
        target.mkdir(parents=True)
        write_files(target, files.files)

    def _tell(self, key: str, packages: list[dict[str, Any]], state: str, text: str) -> None:
        """Tell the server; an unreachable server is not the environment's failure."""
        body = {"worker": self.worker, "key": key, "packages": packages, "state": state}
        try:
            self.client.post("/api/workers/environments", body | {"log": text})
        except RunyardError as exc:
            log.warning("environment %s %s: the server was not told: %s", key, state, exc)


def install_environment(folder: Path) -> dict[str, str]:
    """The variables of the install commands: the worker's, without its token, with the
    environment's ``bin`` first on PATH, and bytecode compiled as packages are installed (jobs
    would each compile what they import: ``PYTHONDONTWRITEBYTECODE`` is dropped)."""
    env = {k: v for k, v in os.environ.items() if k not in PRIVATE}
    env.pop("PYTHONHOME", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["VIRTUAL_ENV"] = str(folder)
    env["UV_COMPILE_BYTECODE"] = "1"
    env["PATH"] = os.pathsep.join((str(_python(folder).parent), env.get("PATH", "")))
    return env


def _checked_key(spec: dict[str, Any]) -> str:
    key = str(spec.get("key", ""))
    if not key or not all(c in "0123456789abcdef" for c in key):
        raise EnvironmentFailed(f"the server sent an environment without a valid key: {key!r}")
    return key


def _python(folder: Path) -> Path:
    return folder / "bin" / "python"


def _uv() -> str | None:
    """The uv program (the ``uv`` package's, else one on PATH); None: use venv and pip."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def _layer(purelib: Path) -> None:
    """Make the worker's own packages importable in the environment, after its own."""
    # The worker's own site folders as its Python has them (not the user's site-packages
    # when the worker's Python does not read them: a virtual environment).
    folders = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    lines = [f"import site; site.addsitedir({folder!r})" for folder in folders]
    (purelib / LAYER).write_text("\n".join(lines) + "\n")


def _run(argv: list[str], out: Any) -> None:
    out.write("$ " + shlex.join(argv) + "\n")
    out.flush()
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise EnvironmentFailed(f"{Path(argv[0]).name} exited with status {done.returncode}")


def _run_command(command: str, cwd: Path, env: dict[str, str], out: Any) -> int:
    """Run an install command in a shell of its own session; on timeout, kill all it
    started (a pip or uv under the shell would go on writing into the environment)."""
    process = subprocess.Popen(
        command,
        shell=True,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        return process.wait(timeout=INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise EnvironmentFailed(
            f"the install command did not end within {INSTALL_TIMEOUT:.0f} s"
        ) from None


def _tail(path: Path) -> str:
    text = path.read_text(encoding="utf-8", errors="replace")
    if len(text) > LOG_LIMIT:
        return f"[... {len(text) - LOG_LIMIT} characters skipped ...]\n" + text[-LOG_LIMIT:]
    return text


@contextmanager
def _file_lock(root: Path, key: str) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
