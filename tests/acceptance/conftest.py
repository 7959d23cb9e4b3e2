"""The real ``runyard`` command as subprocesses: a server (alone or with its local worker),
workers with their own data directories, and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

RUNYARD = [sys.executable, "-m", "runyard"]

T = TypeVar("T")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without its ``RUNYARD_*`` variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    return env | dict(extra or {})


def wait_for(
    condition: Callable[[], T | None],
    what: str,
    *,
    timeout: float = 30,
    interval: float = 0.05,
    alive: subprocess.Popen[str] | None = None,
) -> T:
    """Poll ``condition`` until it returns something other than None/False; fail after
    ``timeout`` seconds, or at once if the process ``alive`` has exited."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value is not None and value is not False:
            return value
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"{what}: the process exited with status {alive.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(interval)


@dataclass
class Installation:
    data_dir: Path
    process: subprocess.Popen[str]

    @property
    def env(self) -> dict[str, str]:
        return clean_env({"RUNYARD_DATA_DIR": str(self.data_dir)})

    @property
    def url(self) -> str:
        url: str = json.loads((self.data_dir / "server.json").read_text())["url"]
        return url

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()

    def cli(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*RUNYARD, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"runyard {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def status(self, workflow: str, *extra: str) -> dict[str, Any]:
        """``runyard status --json``; with ``--wait``, Failed jobs (exit status 3) are no
        error here: tests look at the states."""
        result = self.cli("status", workflow, "--json", *extra, check=False)
        if result.returncode not in (0, 3) or (result.returncode == 3 and "--wait" not in extra):
            raise AssertionError(f"runyard status {workflow} failed:\n{result.stderr}")
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    def api(self, method: str, path: str, body: Any = None, *, expect: int | None = None) -> Any:
        """Call the HTTP API as the admin; the decoded JSON answer (errors fail the test,
        unless the answer's status is ``expect``)."""
        response = httpx.request(
            method,
            self.url + path,
            json=body,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
        )
        if expect is not None and response.status_code != expect:
            raise AssertionError(f"{method} {path}: {response.status_code}, not {expect}")
        if expect is None and response.status_code >= 400:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    def job(self, serial: int) -> dict[str, Any]:
        """The job's JSON, as ``GET /api/jobs/{serial}`` returns it."""
        data: dict[str, Any] = self.api("GET", f"/api/jobs/{serial}")
        return data


def _start(
    data_dir: Path, command: list[str], log_name: str, env: Mapping[str, str] | None
) -> Installation:
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / log_name
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, env=clean_env(env), stdout=log, stderr=subprocess.STDOUT, text=True
        )
    try:
        wait_for(
            lambda: (data_dir / "server.json").exists(),
            f"runyard {command[3]} starting",
            timeout=60,
            alive=process,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}:\n{log_path.read_text()}") from None
    return Installation(data_dir=data_dir, process=process)


def start_up(data_dir: Path, *extra: str) -> Installation:
    """``runyard up``: the server and its local worker."""
    command = [*RUNYARD, "up", "--data-dir", str(data_dir), "--port", "0", *extra]
    return _start(data_dir, command, "up.log", None)


def start_server(data_dir: Path, *extra: str, env: Mapping[str, str] | None = None) -> Installation:
    """``runyard server`` alone: jobs wait for workers started with ``start_worker``."""
    command = [*RUNYARD, "server", "--data-dir", str(data_dir), "--port", "0", *extra]
    return _start(data_dir, command, "server.log", env)


def stop(installation: Installation) -> None:
    installation.process.terminate()
    try:
        installation.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        installation.process.kill()
        installation.process.wait()


@dataclass
class Worker:
    """A ``runyard worker`` process with its own data directory; its output in ``log_path``."""

    name: str
    data_dir: Path
    process: subprocess.Popen[str]

    @property
    def log_path(self) -> Path:
        return self.data_dir / "worker.log"

    def log(self) -> str:
        return self.log_path.read_text()

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker {self.name} still running after {timeout} s:\n{self.log()}"
            ) from None

    def kill(self) -> None:
        """``kill -9`` (a stopped process dies too), and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def start_worker(
    server: Installation,
    name: str,
    data_dir: Path,
    *extra: str,
    env: Mapping[str, str] | None = None,
) -> Worker:
    """``runyard worker`` named ``name`` on ``server``'s URL with a new worker token, keeping
    its files in ``data_dir`` (not the server's); ``env``: variables of its own."""
    token = server.cli("token", "create-worker", name).stdout.strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        *RUNYARD,
        "worker",
        "--server",
        server.url,
        "--token",
        token,
        "--data-dir",
        str(data_dir),
        "--name",
        name,
        *extra,
    ]
    with open(data_dir / "worker.log", "w") as log:
        process = subprocess.Popen(
            command, env=clean_env(env), stdout=log, stderr=subprocess.STDOUT, text=True
        )
    return Worker(name=name, data_dir=data_dir, process=process)


@pytest.fixture
def up(tmp_path: Path, database_url: str) -> Iterator[Installation]:
    """``runyard up`` on SQLite and on PostgreSQL."""
    extra = () if database_url.startswith("sqlite") else ("--database-url", database_url)
    installation = start_up(tmp_path / "lab", *extra)
    yield installation
    stop(installation)
