"""A worker's settings: ``WorkerConfig``, from ``runyard worker``'s flags or ``runyard up``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class SlurmOptions:
    """What ``runyard worker --executor slurm`` asks of Slurm for every job (``sbatch``'s
    ``--partition``, ``--cpus-per-task``, ``--mem``, ``--time``; None: the cluster's default).
    A task type's ``timeout_seconds`` sets the time limit of its jobs instead of ``time``."""

    partition: str | None = None
    cpus: int | None = None
    memory: str | None = None  # as sbatch takes it: 4G, 500M
    time: str | None = None  # as sbatch takes it: minutes, or [days-]hours:minutes:seconds
    poll_seconds: float = 1.0  # how often squeue is asked about the worker's Slurm jobs
    array: int = 1  # the most jobs submitted together as one job array; 1: none
    array_wait: float = 0.5  # seconds a job waits for others to fill its job array


@dataclass(frozen=True, kw_only=True)
class WorkerConfig:
    server: str
    token: str
    name: str
    data_dir: Path
    max_jobs: int = 2
    provides: tuple[str, ...] = ()
    installs: bool = False  # installs dependency packages when a job needs them
    burst: bool = False
    # Longest wait of an idle worker's claim (the server answers at once when a job comes):
    # also how long a stop signal may wait for that request to return.
    poll_seconds: float = 2.0
    # How often the leases of held jobs are renewed, with the scripts' new output: also how
    # soon an aborted job's script is killed.
    heartbeat_seconds: float = 1.0
    grace_seconds: float = 60.0  # on SIGTERM: how long running jobs may go on
    fast_start: bool = True  # start jobs from the warm fork server
    executor: str = "local"  # "local": processes on this machine; "slurm": Slurm batch jobs
    slurm: SlurmOptions = field(default_factory=SlurmOptions)

    ahead_seconds: float = 0.5  # claim ahead for a slot whose job started this recently
    give_back_seconds: float = 2.0  # a job claimed ahead and not started by then goes back
