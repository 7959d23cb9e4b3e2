"""Request bodies (pydantic) and the JSON renderings of records."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from annotated_types import Interval
from fastapi import Body as BodyParam
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, WithJsonSchema

from runyard.models import (
    Dependency,
    Job,
    Lease,
    SpawnedJob,
    Task,
    TaskType,
    UserDataFile,
    UserDataListing,
    UserDataMapping,
    Worker,
    Workflow,
)
from runyard.operations.environments import ANY_VERSION
from runyard.packages import Documentation, DocumentFile
from runyard.states import is_claimed
from runyard.store.dependency_packages import ImportedDependencyPackage
from runyard.store.task_types import interface_to_json
from runyard.store.workflows import source_to_json as source_json

__all__ = ["source_json"]

MAX_SPAWN_JOBS = 10_000


# Integers that a request carries into the database (ids, serials, counts, offsets) must
# fit its INTEGER columns (32 bits on PostgreSQL), sizes in bytes its BIGINT columns; a
# larger one is refused (422) before it reaches a query. ``Int32`` and ``Size`` are for
# path and query parameters (parsed from text), ``JsonInt32`` for JSON bodies: a JSON
# integer only (not true, not 1.5 or 1.0).
INT32_RANGE = Interval(ge=-(2**31), le=2**31 - 1)
Int32 = Annotated[int, INT32_RANGE]
JsonInt32 = Annotated[int, Strict(), INT32_RANGE]
Size = Annotated[int, Interval(ge=-(2**63), le=2**63 - 1)]


def is_int32(value: object) -> bool:
    """Whether ``value`` is what ``JsonInt32`` accepts as it is."""
    return type(value) is int and -(2**31) <= value <= 2**31 - 1


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, for programs: not_found, conflict, invalid_input, ...")
    message: str = Field(description="A sentence for people: what is wrong, what to do.")
    details: dict[str, Any] = Field(description="The values involved (may be empty).")


class ErrorAnswer(BaseModel):
    """The one shape of every error answer (docs/http-api.md#errors)."""

    error: ErrorDetail


# The error answers of every route, for the OpenAPI document: a route may refuse the
# caller (401, 403), not find what it names (404), find it in a state that does not
# allow the call (409), or refuse the request (422); and any route may meet its database
# away (503) or a full disk (507).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorAnswer, "description": description}
    for status, description in [
        (401, "No token, or an unknown, revoked or expired one (unauthorized)."),
        (403, "The caller may not make this call (forbidden)."),
        (404, "No such workflow, task, run, job, worker, file or path (not_found)."),
        (409, "It exists already, or its state does not allow the call (conflict, ...)."),
        (413, "The request body is larger than the route takes (too_large)."),
        (422, "A malformed request or a bad value (invalid_input, invalid_package, ...)."),
        (429, "Too many failed log ins for the account or address (too_many_requests)."),
        (503, "The server cannot reach its database; try again (database_unavailable)."),
        (507, "The server's disk is full; nothing was stored (insufficient_storage)."),
    ]
}


class EntityBody(Body):
    uuid: str = Field(min_length=1, max_length=64)
    name: str
    type: str = "Entity"


class NewRun(Body):
    task: str
    outputs: dict[str, Any] | None = None
    name: str | None = Field(default=None, max_length=1000)
    entity: EntityBody | None = None


class Priority(Body):
    priority: str


class JobStateChange(Body):
    state: str


class WorkerLimit(Body):
    max_jobs: JsonInt32 | None = Field(ge=0)


class SpawnedStates(Body):
    serials: list[JsonInt32] = Field(max_length=10_000)
    state: str = "Done"


class WorkerRegistration(Body):
    name: str = Field(min_length=1, max_length=200)
    provides: list[str] = []
    max_jobs: JsonInt32 = Field(default=1, ge=1, le=1024)
    version: str = ""
    installs: bool = Field(
        default=False, description="Installs dependency packages when a job needs them."
    )
    holds: list[JsonInt32] | None = Field(
        default=None,
        max_length=1024,
        description="The serials of the jobs the worker holds now (none when it starts): "
        "its other Running jobs were lost with an earlier process of it and are given back "
        "at once. Not given: nothing is given back.",
    )


class WorkerInstalls(Body):
    allowed: bool = Field(description="Whether the worker may install dependency packages.")


class PackageName(Body):
    name: str = Field(min_length=1, max_length=100)
    version: str = Field(default="", max_length=50, description="Empty: the newest imported.")

    def dependency(self) -> Dependency:
        return Dependency(name=self.name, version=self.version or ANY_VERSION)


class EnvironmentPackage(Body):
    name: str = Field(min_length=1, max_length=100)
    version: str = Field(max_length=50)
    install: str | None = None


class EnvironmentNews(Body):
    worker: str
    key: str = Field(pattern=r"^[0-9a-f]{1,64}$")
    packages: list[EnvironmentPackage] = Field(max_length=200)
    state: Literal["Installing", "Ready", "Failed"]
    log: str = Field(default="", max_length=1_000_000)


class EnvironmentRequest(Body):
    worker: str
    packages: list[PackageName] = Field(min_length=1, max_length=50)


class InstallRequest(Body):
    packages: list[PackageName] = Field(min_length=1, max_length=50)


class ClaimRequest(Body):
    worker: str
    max: JsonInt32 = Field(default=1, ge=0, le=256)
    wait: float = Field(default=0.0, ge=0.0, le=60.0)


class LeaseBody(Body):
    lease: str


class Heartbeat(LeaseBody):
    log: str = ""
    started: bool = Field(default=False, description="The job's script has started.")


class Progress(Body):
    fraction: float | None = Field(default=None, ge=0.0, le=1.0)
    message: str = Field(default="", max_length=1000)


class ActivityMessage(Body):
    message: str = Field(min_length=1, max_length=10000)
    level: str = "info"


class JobResult(Body):
    serial: JsonInt32
    lease: str
    ok: bool
    outputs: dict[str, Any] = {}
    error: str = ""
    log: str = ""
    workdir: str = ""


class WorkerReport(Body):
    """Finished jobs, and how many more jobs the worker wants (in one round trip)."""

    worker: str
    results: list[JobResult] = Field(default=[], max_length=1024)
    claim: JsonInt32 = Field(default=0, ge=0, le=256)


class Beat(Body):
    serial: JsonInt32
    lease: str
    log: str = ""
    started: bool = Field(default=False, description="The job's script has started.")


class WorkerHeartbeat(Body):
    worker: str
    beats: list[Beat] = Field(max_length=4096)


class Completion(LeaseBody):
    outputs: dict[str, Any] = {}
    log: str = ""


class Failure(LeaseBody):
    error: str
    log: str = ""
    workdir: str = ""


class TaskTypeRef(Body):
    model_config = ConfigDict(extra="ignore")  # scripts pass what find_task_types gave

    name: str
    version: str | None = None


class SpawnTaskInput(Body):
    key: str
    source: dict[str, Any]


class SpawnTask(Body):
    task_type: TaskTypeRef
    name: str = Field(min_length=1, max_length=200)
    spawn_key: str | None = Field(default=None, max_length=200)
    inputs: list[SpawnTaskInput] = Field(default=[], max_length=1000)


class NewTask(Body):
    name: str = Field(min_length=1, max_length=200)
    task_type: TaskTypeRef
    inputs: list[SpawnTaskInput] = Field(default=[], max_length=1000)


class Position(Body):
    x: float = Field(ge=-1e6, le=1e6)
    y: float = Field(ge=-1e6, le=1e6)


class Layout(Body):
    """Where the workflow graph draws each task: ``{"positions": {task: {"x", "y"}}}``."""

    positions: dict[str, Position] = Field(max_length=10000)


class Name(Body):
    name: str = Field(min_length=1, max_length=200)


class OptionalName(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)


class Submission(Body):
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None


class TaskEdit(Body):
    inputs: list[SpawnTaskInput] | None = Field(default=None, max_length=1000)
    task_type_version: str | None = None


class RerunStale(Body):
    task: str | None = None


class OutputSelection(Body):
    """Whose output files to zip: a column (``task`` and ``key``) or jobs (``serials``)."""

    task: str | None = Field(default=None, description="With key: this output of each run.")
    key: str | None = Field(default=None, description="The output key of the column.")
    serials: list[JsonInt32] | None = Field(
        default=None, max_length=10000, description="Jobs (cells) whose files to zip."
    )


class RestartFilter(Body):
    states: list[str] = Field(default=[], description="Waiting, Queued, Running, Done, ...")
    tasks: list[str] = Field(default=[], description="Task names; empty: every task.")
    runs: list[JsonInt32] = Field(default=[], description="Run ids; empty: every live run.")


class JobRestarts(Body):
    """The jobs to restart: ``serials`` or ``filter`` (not both)."""

    serials: list[JsonInt32] | None = None
    filter: RestartFilter | None = None


class SpawnJob(Body):
    task: JsonInt32 = Field(description="The id of the task (as spawned tasks are answered).")
    outputs: dict[str, Any] = {}
    state: str = "Done"
    sort_order: str | None = None
    metadata: dict[str, Any] = {}
    inputs: dict[str, Any] = {}
    source_job_serial: JsonInt32 | None = None
    serial: JsonInt32 | None = Field(
        default=None, description="A serial the spawning job reserved (POST /api/spawn/serials)."
    )


class SpawnJobs(Body):
    jobs: list[SpawnJob] = Field(max_length=MAX_SPAWN_JOBS)


class SerialReservation(Body):
    count: JsonInt32 = Field(ge=1, le=MAX_SPAWN_JOBS)


class SpawnStateChange(Body):
    serial: JsonInt32
    state: str = "Done"
    after: JsonInt32 = Field(ge=0, description="How many of the batch's jobs come before it.")


class SpawnBatch(Body):
    jobs: Any = Field(default=[], description="As the jobs of POST /api/spawn/jobs.")
    states: list[SpawnStateChange] = Field(default=[], max_length=MAX_SPAWN_JOBS)


def _spawn_jobs_schema() -> dict[str, Any]:
    """The JSON schema of ``SpawnJobs`` with ``SpawnJob`` inlined (no references)."""
    schema = SpawnJobs.model_json_schema()
    item = schema.pop("$defs")["SpawnJob"]
    schema["properties"]["jobs"]["items"] = item
    return schema


# The body of POST /api/spawn/jobs: any JSON, checked by ``spawn_job_items`` (documented
# as ``SpawnJobs``). A 10,000-job body validated by the model costs about 0.1 s, a copy of
# every item; most bodies need only a look at each item's types.
SpawnJobsBody = Annotated[Any, BodyParam(), WithJsonSchema(_spawn_jobs_schema())]
_SPAWN_JOB_FIELDS = frozenset(SpawnJob.model_fields)
_OPTIONAL = (type(None), str)


def spawn_job_items(body: Any) -> list[dict[str, Any]]:
    """The jobs of a ``SpawnJobs`` body, as dicts of ``SpawnJob`` fields (those left out
    take their defaults): the items themselves when each is what the model would accept
    unchanged (every value of its field's type, no other keys), else the model's (with its
    conversions, or its errors as for any other body: 422)."""
    if _plain_spawn_jobs(body):
        jobs: list[dict[str, Any]] = body["jobs"]
        return jobs
    try:
        checked = SpawnJobs.model_validate(body, from_attributes=True)  # as FastAPI does
        return [job.model_dump() for job in checked.jobs]
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=body) from None


def _plain_spawn_jobs(body: Any) -> bool:
    if type(body) is not dict or body.keys() != {"jobs"}:
        return False
    jobs = body["jobs"]
    if type(jobs) is not list or len(jobs) > MAX_SPAWN_JOBS:
        return False
    fields, optional = _SPAWN_JOB_FIELDS, _OPTIONAL
    for item in jobs:
        if (
            type(item) is not dict
            or not fields.issuperset(item)
            or not is_int32(item.get("task"))
            or type(item.get("outputs", {})) is not dict
            or type(item.get("metadata", {})) is not dict
            or type(item.get("inputs", {})) is not dict
            or type(item.get("state", "")) is not str
            or type(item.get("sort_order")) not in optional
            or not (item.get("source_job_serial") is None or is_int32(item["source_job_serial"]))
            or not (item.get("serial") is None or is_int32(item["serial"]))
        ):
            return False
    return True


class WorkerTokenRequest(Body):
    name: str = Field(min_length=1, max_length=200)


class UserDataMappingBody(Body):
    root: str = Field(description="The virtual root, a folder path like /Scans/.")
    folder: str = Field(description="The real folder on the server (an absolute path).")
    groups: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="The groups whose members (and their workflows' jobs) may use it; "
        "empty: every user.",
    )


class UserDataTokenRequest(Body):
    scopes: list[list[str]] = Field(
        max_length=1000,
        description='[["list"|"read"|"write", virtual path], ...]',
    )


def job_json(job: Job) -> dict[str, Any]:
    data = asdict(job)
    for key in ("created_at", "started_at", "finished_at", "script_started_at"):
        data[key] = data[key].isoformat() if data[key] else None
    # Running, but its worker has not said the script started: claimed (ahead) only.
    data["claimed"] = is_claimed(job)
    return data


def spawned_job_json(job: SpawnedJob) -> dict[str, Any]:
    return {
        "serial": job.serial,
        "run_id": job.run_id,
        "task_id": job.task_id,
        "state": job.state,
        "spawned_by_job": job.spawned_by_job,
    }


def task_json(task: Task, spawn_key: str | None = None) -> dict[str, Any]:
    return {
        "id": task.id,
        "name": task.name,
        "task_type": {"name": task.task_type.name, "version": task.task_type.version},
        "inputs": [{"key": i.key, "source": source_json(i.source)} for i in task.inputs],
        "spawn_key": spawn_key,
    }


def lease_json(lease: Lease) -> dict[str, Any]:
    return {
        "lease": lease.lease_id,
        "attempt": lease.attempt,
        "expires_at": lease.expires_at.isoformat(),
    }


def task_type_json(tt: TaskType) -> dict[str, Any]:
    return {
        "name": tt.name,
        "version": tt.version,
        "display_name": tt.display_name,
        "summary": tt.summary,
        "author": tt.author,
        "entry_point": tt.entry_point,
        "timeout_seconds": tt.timeout_seconds,
        "jobs_per_process": tt.jobs_per_process,
        "retries": tt.retries,
        "resources": dict(tt.resources),
        "dependencies": [asdict(d) for d in tt.dependencies],
        "interface": interface_to_json(tt.interface),
    }


def documentation_json(doc: Documentation) -> dict[str, Any]:
    """A package's remarks, author and documentation files (each ``{filename, text}`` or
    null)."""

    def document(found: DocumentFile | None) -> dict[str, str] | None:
        return None if found is None else {"filename": found.filename, "text": found.text}

    return {
        "remarks": doc.remarks,
        "author": asdict(doc.author),
        "description": document(doc.description),
        "citation_cff": document(doc.citation_cff),
        "readme": document(doc.readme),
    }


def dependency_package_json(pkg: ImportedDependencyPackage) -> dict[str, Any]:
    """An imported dependency package; ``install`` null is a virtual marker."""
    return {
        "name": pkg.name,
        "version": pkg.version,
        "display_name": pkg.display_name,
        "summary": pkg.summary,
        "install": pkg.install,
        "virtual_marker": pkg.install is None,
        "dependencies": [asdict(d) for d in pkg.dependencies],
        "author": {k: pkg.author.get(k, "") for k in ("name", "email", "website")},
        "remarks": pkg.metadata.get("remarks", ""),
        "imported_at": pkg.imported_at.isoformat() if pkg.imported_at else None,
    }


def workflow_json(workflow: Workflow) -> dict[str, Any]:
    return {
        "name": workflow.name,
        "state": workflow.state,
        "locked": workflow.locked,
        "remarks": workflow.remarks,
        "created_at": workflow.created_at.isoformat() if workflow.created_at else None,
    }


def worker_json(worker: Worker, running: list[int] | None = None) -> dict[str, Any]:
    return {
        "name": worker.name,
        "provides": list(worker.provides),
        "max_jobs": worker.max_jobs,
        "max_jobs_limit": worker.max_jobs_limit,
        "running": running or [],
        "version": worker.version,
        "last_seen": worker.last_seen.isoformat() if worker.last_seen else None,
        "installs": worker.installs,
        "installs_allowed": worker.installs_allowed,
        "environments": [{"key": key, "state": state} for key, state in worker.environments],
    }


def environment_json(found: dict[str, Any]) -> dict[str, Any]:
    """One of a worker's environments, with its install log."""
    return {
        "worker": found["worker"],
        "key": found["key"],
        "packages": found["packages"],
        "state": found["state"],
        "log": found["log"],
        "updated_at": found["updated_at"].isoformat(),
    }


def userdata_mapping_json(mapping: UserDataMapping, *, folder: bool = True) -> dict[str, Any]:
    """A User Data mapping; its real folder only if ``folder`` (admins see it)."""
    return {
        "root": mapping.root,
        "folder": mapping.folder if folder else None,
        "groups": list(mapping.groups),
        "created_at": mapping.created_at.isoformat() if mapping.created_at else None,
    }


def userdata_file_json(item: UserDataFile) -> dict[str, Any]:
    return {"name": item.name, "size": item.size, "mtime": item.mtime.isoformat()}


def userdata_listing_json(listing: UserDataListing) -> dict[str, Any]:
    return {
        "path": listing.path,
        "files": [userdata_file_json(f) for f in listing.files],
        "folders": [{"name": f.name, "virtual_name": f.virtual_name} for f in listing.folders],
        "unnamable": [{"name": u.name, "problem": u.problem} for u in listing.unnamable],
    }
