"""The task-script library: what a script running as a Runyard job uses.

    from runyard import task

    job = task.current_job()
    threshold = job.inputs["threshold"]
    ...
    task.finish({"count": 42})

The worker starts the script with the job's context in environment variables
(``RUNYARD_SERVER``, ``RUNYARD_JOB_SERIAL``, ``RUNYARD_JOB_TOKEN``, ``RUNYARD_JOB_FILE``,
``RUNYARD_RESULT_FILE``). ``finish`` and ``fail`` end the script; the worker then reports
the outcome to the server under the job's lease.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from runyard.client import Client


class NotInAJob(RuntimeError):
    """The code runs outside a Runyard job (the worker's variables are missing)."""


@dataclass(frozen=True, kw_only=True)
class CurrentJob:
    serial: int
    inputs: dict[str, Any]
    metadata: dict[str, Any]
    server: str
    token: str
    working_dir: Path

    def client(self) -> Client:
        """A client of the server, authenticated as this job."""
        return Client(self.server, self.token)


def _variable(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise NotInAJob(f"{name} is not set: this script must be run by a Runyard worker")
    return value


def current_job() -> CurrentJob:
    job = json.loads(Path(_variable("RUNYARD_JOB_FILE")).read_text())
    return CurrentJob(
        serial=int(_variable("RUNYARD_JOB_SERIAL")),
        inputs=job.get("inputs", {}),
        metadata=job.get("metadata", {}),
        server=_variable("RUNYARD_SERVER"),
        token=_variable("RUNYARD_JOB_TOKEN"),
        working_dir=Path.cwd(),
    )


def _write_result(result: dict[str, Any]) -> None:
    path = Path(_variable("RUNYARD_RESULT_FILE"))
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps(result))
    staging.replace(path)


def finish(outputs: dict[str, Any] | None = None) -> NoReturn:
    """End the job as Done with these outputs (JSON values keyed by output key)."""
    _write_result({"outputs": outputs or {}})
    sys.stdout.flush()
    sys.exit(0)


def fail(message: str) -> NoReturn:
    """End the job as Failed with this message."""
    _write_result({"error": message})
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)
