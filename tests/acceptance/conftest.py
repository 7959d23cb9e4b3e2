"""The real ``runyard`` command as subprocesses: a server with its local worker, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

RUNYARD = [sys.executable, "-m", "runyard"]


@dataclass
class Installation:
    data_dir: Path
    process: subprocess.Popen[str]

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
        return env | {"RUNYARD_DATA_DIR": str(self.data_dir)}

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
        data: dict[str, Any] = json.loads(self.cli("status", workflow, "--json", *extra).stdout)
        return data


def start_up(data_dir: Path, *extra: str) -> Installation:
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    with open(data_dir / "up.log", "w") as log:
        process = subprocess.Popen(
            [*RUNYARD, "up", "--data-dir", str(data_dir), "--port", "0", *extra],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    deadline = time.monotonic() + 60
    while not (data_dir / "server.json").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("runyard up did not start:\n" + (data_dir / "up.log").read_text())
        time.sleep(0.05)
    return Installation(data_dir=data_dir, process=process)


def stop(installation: Installation) -> None:
    installation.process.terminate()
    try:
        installation.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        installation.process.kill()
        installation.process.wait()


@pytest.fixture
def up(tmp_path: Path, database_url: str) -> Iterator[Installation]:
    """``runyard up`` on SQLite and on PostgreSQL."""
    extra = () if database_url.startswith("sqlite") else ("--database-url", database_url)
    installation = start_up(tmp_path / "lab", *extra)
    yield installation
    stop(installation)
