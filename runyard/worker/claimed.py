"""A job this worker holds, from its claim to its report: ``Claimed``, as the server handed
it out, with what the worker's threads keep of it (its process, its working folder, its log
pump, whether its lease was lost or it was given back)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runyard.worker.joblog import LogPump

if TYPE_CHECKING:
    from runyard.worker.processes import JobProcess


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
