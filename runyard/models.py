"""Records: immutable values that never do I/O.

The words are those of the glossary (docs/glossary.md): task type, workflow, task, input
source, run, job, entity, worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JSON = Any


@dataclass(frozen=True, kw_only=True)
class Parameter:
    """One input or output of a task type's interface."""

    key: str
    type: str
    supported_modes: tuple[str, ...] = ()
    default: JSON = None
    description: str = ""
    constraints: dict[str, JSON] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Interface:
    kind: str  # processing | interactive | reduce
    inputs: tuple[Parameter, ...] = ()
    outputs: tuple[Parameter, ...] = ()

    def input(self, key: str) -> Parameter | None:
        return next((p for p in self.inputs if p.key == key), None)

    def output(self, key: str) -> Parameter | None:
        return next((p for p in self.outputs if p.key == key), None)


@dataclass(frozen=True, kw_only=True)
class Dependency:
    name: str
    version: str


@dataclass(frozen=True, kw_only=True)
class TaskType:
    id: int = 0
    name: str
    version: str
    display_name: str = ""
    summary: str = ""
    author: str = ""
    entry_point: str = "main.py"
    timeout_seconds: float | None = None
    # > 1: the worker runs the jobs one after another in a reused process, at most this
    # many each (docs/workers.md); 1: a new process per job.
    jobs_per_process: int = 1
    # How many times a job whose script fails is restarted as a new job by itself.
    retries: int = 0
    dependencies: tuple[Dependency, ...] = ()
    interface: Interface
    path: str = ""  # folder holding the installed script(s)
    # What its jobs ask of a cluster: "cpus", "memory" (4G, 500M), "partition" (each
    # optional; the Slurm executor's sbatch options, over the worker's defaults).
    resources: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, kw_only=True)
class InputSource:
    """Where a task input comes from (glossary: input source)."""

    mode: str  # none | fixed | output | define_on_first | ui
    fixed_value: JSON = None
    task: str | None = None  # output: name of the upstream task
    key: str | None = None  # output: output key of the upstream task
    template: JSON = None  # define_on_first: the answer of the first job


@dataclass(frozen=True, kw_only=True)
class TaskInput:
    key: str
    source: InputSource


@dataclass(frozen=True, kw_only=True)
class Task:
    id: int = 0
    workflow_id: int = 0
    name: str
    position: int = 0
    task_type: TaskType
    inputs: tuple[TaskInput, ...] = ()
    spawned_by: int | None = None  # the id of the task whose job spawned this one

    def input_source(self, key: str) -> InputSource:
        return next(i.source for i in self.inputs if i.key == key)

    def upstream_names(self) -> set[str]:
        return {i.source.task for i in self.inputs if i.source.mode == "output" and i.source.task}

    @property
    def is_source(self) -> bool:
        return not self.upstream_names()


@dataclass(frozen=True, kw_only=True)
class Workflow:
    id: int = 0
    name: str
    state: str = "Draft"
    locked: bool = False
    remarks: str = ""
    created_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Entity:
    uuid: str
    name: str
    type: str = "Entity"

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "uuid": self.uuid, "name": self.name}


@dataclass(frozen=True, kw_only=True)
class Run:
    id: int = 0
    workflow_id: int
    name: str
    sort_order: str
    priority: str = "normal"
    obsolete: bool = False
    entity: Entity | None = None
    study: bool = False  # the workflow's own run, holding its reduce jobs; never listed

    def to_json(self) -> dict[str, Any]:
        """The run as the HTTP API shows it (the runs table adds its cells)."""
        return {
            "id": self.id,
            "name": self.name,
            "sort_order": self.sort_order,
            "priority": self.priority,
            "obsolete": self.obsolete,
            "entity": self.entity.to_json() if self.entity else None,
        }


@dataclass(frozen=True, kw_only=True)
class Job:
    serial: int = 0
    workflow_id: int
    run_id: int
    task_id: int
    task_type_id: int
    state: str
    inputs: dict[str, JSON] = field(default_factory=dict)
    outputs: dict[str, JSON] = field(default_factory=dict)
    metadata: dict[str, JSON] = field(default_factory=dict)
    error: str = ""
    attempt: int = 0
    worker: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # When the worker said the script started; None for a Running job that is only claimed
    # (claimed ahead, waiting for a free slot on its worker).
    script_started_at: datetime | None = None
    workdir: str = ""  # the working folder kept on the worker after a failure
    progress: dict[str, JSON] | None = None  # {"fraction": 0..1, "message": "..."}
    spawned_by_job: int | None = None  # the job that spawned this one, if any


@dataclass(frozen=True, kw_only=True)
class SpawnedJob:
    """What a spawn answers for each job: enough to refer to it and to its run."""

    serial: int
    run_id: int
    task_id: int
    state: str
    spawned_by_job: int
    spawned_now: bool = False  # by this call (not answered as spawned before)


@dataclass(frozen=True, kw_only=True)
class Lease:
    """A worker's claim on one job: valid until ``expires_at`` unless renewed."""

    job_serial: int
    lease_id: str
    attempt: int
    expires_at: datetime


@dataclass(frozen=True, kw_only=True)
class Worker:
    id: int = 0
    name: str
    provides: tuple[str, ...] = ()
    max_jobs: int = 1
    version: str = ""
    last_seen: datetime | None = None
    max_jobs_limit: int | None = None  # an admin's limit; claims never exceed it
    installs: bool = False  # installs dependency packages when a job needs them (it asked to)
    installs_allowed: bool = True  # an admin lets it install them
    # Its environments for sets of dependency packages: (key, state) with state Installing,
    # Ready or Failed (runyard.operations.environments).
    environments: tuple[tuple[str, str], ...] = ()

    def capabilities(self) -> Capabilities:
        """What decides which jobs the worker may claim."""
        states = dict(self.environments)
        return Capabilities(
            provides=frozenset(self.provides),
            installs=self.installs and self.installs_allowed,
            ready=frozenset(k for k, state in states.items() if state == "Ready"),
            failed=frozenset(k for k, state in states.items() if state == "Failed"),
        )


@dataclass(frozen=True)
class Capabilities:
    """Which task types a worker can run: those whose dependency packages it provides (by
    name), has installed (``ready``: environment keys), or may install (``installs``) unless
    that environment failed on it (``failed``)."""

    provides: frozenset[str] = frozenset()
    installs: bool = False
    ready: frozenset[str] = frozenset()
    failed: frozenset[str] = frozenset()


@dataclass(frozen=True, kw_only=True)
class StoredFile:
    """A file in the file store (a job's output file, or an uploaded input file)."""

    id: str
    filename: str
    size: int
    sha256: str
    job_serial: int | None = None

    def reference(self) -> dict[str, JSON]:
        """How a job output points at this file: a ``ForeignFile`` value."""
        return {
            "type": "ForeignFile",
            "source": "filestore",
            "file_id": self.id,
            "filename": self.filename,
            "size": self.size,
            "sha256": self.sha256,
        }


@dataclass(frozen=True, kw_only=True)
class UserDataMapping:
    """A virtual root of User Data (``/Scans/``) and the real folder on the server it stands
    for (``/data/scans``)."""

    root: str
    folder: str
    created_at: datetime | None = None
    groups: tuple[str, ...] = ()  # the groups whose members may use it; empty: every user


@dataclass(frozen=True, kw_only=True)
class UserDataFile:
    """A file of a User Data folder listing (or one just written)."""

    name: str
    size: int
    mtime: datetime


@dataclass(frozen=True, kw_only=True)
class UserDataFolder:
    """A subfolder of a User Data folder listing; ``virtual_name`` is its name with a
    trailing ``/``, what ``virtualpath.join_folder`` takes."""

    name: str

    @property
    def virtual_name(self) -> str:
        return self.name + "/"


@dataclass(frozen=True, kw_only=True)
class UnnamableEntry:
    """A file or folder that no virtual path can name (its name is not UTF-8): left out of
    a listing, and shown in it with each undecodable byte as ``\\xNN`` so that it can be
    found and renamed."""

    name: str
    problem: str


@dataclass(frozen=True, kw_only=True)
class UserDataListing:
    """What one User Data folder (``path``) holds, each kind sorted by name."""

    path: str
    files: tuple[UserDataFile, ...] = ()
    folders: tuple[UserDataFolder, ...] = ()
    unnamable: tuple[UnnamableEntry, ...] = ()
